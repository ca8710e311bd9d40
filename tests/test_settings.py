"""One settings module: every ``NEWSFORGE_*`` variable is read in ``training/settings.py`` and documented there;
the README and ``docs/*.md`` mention only those, and each one that is not internal."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from training import settings

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("training", "serving", "assets", "orchestration", "newsforge", "benchmarks")
NAME = re.compile(r"NEWSFORGE_[A-Z][A-Z_]*[A-Z]")


def _sources():
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def _docs():
    """The README and the documentation site's pages, where users read about the variables."""
    yield ROOT / "README.md"
    yield from sorted((ROOT / "docs").rglob("*.md"))


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = getattr(node, "body", [])
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def test_no_module_but_settings_holds_a_variable_name_in_its_code():
    """A variable is read where its name alone is a string in code (``os.environ.get("NEWSFORGE_X")``); help texts,
    docstrings and comments may mention it."""
    offenders = []
    for path in _sources():
        if path == ROOT / "training" / "settings.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
                if NAME.fullmatch(node.value.strip()):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value[:60]!r}")
    assert not offenders, "read NEWSFORGE_* variables through training.settings:\n" + "\n".join(offenders)


def test_every_variable_is_documented_and_every_mentioned_one_exists():
    table = settings.__doc__ or ""
    for name in settings.VARIABLES:
        assert f"| {name} |" in table, f"{name} is not in training/settings.py's table"
    mentioned = {m for path in _sources() for m in NAME.findall(path.read_text(encoding="utf-8"))}
    documented = {m for path in _docs() for m in NAME.findall(path.read_text(encoding="utf-8"))}
    unknown = sorted((mentioned | documented) - set(settings.VARIABLES))
    assert not unknown, f"mentioned but not in training.settings.VARIABLES: {unknown}"
    internal = {name for name in settings.VARIABLES if re.search(rf"\| {name} \| internal", table)}
    undocumented = sorted(set(settings.VARIABLES) - internal - documented)
    assert not undocumented, f"not mentioned in README.md or docs/*.md: {undocumented}"


def test_bad_values_name_the_variable(monkeypatch):
    monkeypatch.setenv(settings.DUCKDB_THREADS, "many")
    with pytest.raises(ValueError, match="NEWSFORGE_DUCKDB_THREADS='many'"):
        settings.duckdb_threads()
    monkeypatch.setenv(settings.DUCKDB_THREADS, "3")
    assert settings.duckdb_threads() == 3
    monkeypatch.setenv(settings.CHAMPION_MAX_AGE_DAYS, "-1")
    with pytest.raises(ValueError, match="NEWSFORGE_CHAMPION_MAX_AGE_DAYS=-1"):
        settings.champion_max_age_days()
    monkeypatch.delenv(settings.SERVE_OPTIONS, raising=False)
    with pytest.raises(RuntimeError, match="newsforge serve"):
        settings.serve_options()
    monkeypatch.setenv(settings.EXECUTOR, "  ")
    assert settings.executor_name() == "multiprocess"
