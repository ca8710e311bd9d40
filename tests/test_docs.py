"""The documentation site: ``mkdocs build --strict`` passes without a warning, every page is in the nav, the
glossary names only modules, definitions and assets that exist, and the README stays a short tour."""
from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CODE = re.compile(r"`([^`]+)`")


def _nav_pages(items) -> list[str]:
    pages = []
    for item in items:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        pages += _nav_pages(value) if isinstance(value, list) else [value]
    return pages


def test_site_builds_strictly_without_warnings(tmp_path):
    if importlib.util.find_spec("mkdocs") is None:
        pytest.fail("mkdocs is not installed: it is in the test extra (pip install -e '.[test]', or make install)")
    site = tmp_path / "site"
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    log = result.stdout + result.stderr
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{log}"
    assert "WARNING" not in log, f"mkdocs build printed warnings:\n{log}"
    assert (site / "index.html").is_file() and (site / "glossary" / "index.html").is_file()


def test_every_page_is_in_the_nav_once():
    nav = _nav_pages(yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))["nav"])
    pages = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    assert sorted(set(nav)) == pages, f"docs pages not in mkdocs.yml's nav: {sorted(set(pages) - set(nav))}; " \
                                      f"nav entries without a page: {sorted(set(nav) - set(pages))}"
    assert len(nav) == len(set(nav)), f"pages listed twice in the nav: {sorted(p for p in nav if nav.count(p) > 1)}"


def _glossary_rows() -> list[tuple[str, str, str]]:
    rows = []
    for line in (DOCS / "glossary.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 4 and cells[0] not in ("concept", "---"):
            rows.append((cells[0], cells[2], cells[3]))
    return rows


def _defines(source: str, name: str) -> bool:
    pattern = rf"^(?:class|def)\s+{re.escape(name)}\b|^{re.escape(name)}\s*(?::[^=\n]*)?="
    return re.search(pattern, source, re.MULTILINE) is not None


def test_glossary_homes_exist():
    """Each home is ``path`` optionally followed by the names it defines; parts are separated by ';'."""
    rows = _glossary_rows()
    assert len(rows) >= 20, f"the glossary table has only {len(rows)} rows"
    asset_sources = "\n".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "assets").rglob("*.py")))
    missing = []
    for concept, home, assets in rows:
        assert home, f"glossary: {concept!r} has no home"
        for part in home.split(";"):
            path, *names = CODE.findall(part)
            target = ROOT / path
            if not target.exists():
                missing.append(f"{concept}: {path} does not exist")
                continue
            source = target.read_text(encoding="utf-8") if target.is_file() else ""
            missing += [f"{concept}: {path} defines no {name}" for name in names if not _defines(source, name)]
        missing += [f"{concept}: no asset {name}" for name in CODE.findall(assets)
                    if not re.search(rf"^def {re.escape(name)}\(", asset_sources, re.MULTILINE)]
    assert not missing, "docs/glossary.md is out of date:\n" + "\n".join(missing)


def test_readme_is_a_short_tour_linking_the_docs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250, "README.md is the five-minute tour; move the detail into docs/"
    links = set(re.findall(r"\]\((docs/[^)#]+)", readme))
    assert not [link for link in links if not (ROOT / link).is_file()], f"README links to missing files: {links}"
    assert {"docs/glossary.md", "docs/getting-started.md"} <= links
