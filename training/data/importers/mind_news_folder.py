"""A folder already in MIND's ``news.tsv`` layout (e.g. Adressa converted by Adressa-MIND-Bridge): normalise
and validate the news rows, validate and copy the entity / relation vectors (``*_embedding.vec``)."""
from __future__ import annotations

import json
import math
import unicodedata
from pathlib import Path

from training.data.importers.input_error import ImportInputError
from training.data.importers.mind_writer import write_rows
from training.data.importers.report import ImportReport
from training.data.schema import NEWS_TSV_COLUMNS
from training.staging import staged_dir

VECTOR_FILES = ("entity_embedding.vec", "relation_embedding.vec")
_ENTITY_COLUMNS = ("title_entities", "abstract_entities")


def _normalised_news(path: Path, report: ImportReport) -> tuple[list[tuple[str, ...]], set[str]]:
    """Rows of ``news.tsv`` in Unicode NFC, stripped ids, ``[]`` for empty entities; errors name file:line:field."""
    rows: list[tuple[str, ...]] = []
    first_line: dict[str, int] = {}
    entity_ids: set[str] = set()
    changed = 0
    with open(path, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            where = f"{path}:{line_no}"
            try:
                text = raw.decode("utf-8").rstrip("\n").rstrip("\r")
            except UnicodeDecodeError as err:
                raise ImportInputError(f"{where}: field 'row': invalid UTF-8 at byte {err.start}") from err
            fields = text.split("\t")
            if len(fields) != len(NEWS_TSV_COLUMNS):
                raise ImportInputError(f"{where}: field 'row': expected {len(NEWS_TSV_COLUMNS)} tab-separated "
                                       f"columns ({', '.join(NEWS_TSV_COLUMNS)}), got {len(fields)}")
            norm = [unicodedata.normalize("NFC", f) for f in fields]
            norm[0], norm[1] = norm[0].strip(), norm[1].strip()
            record = dict(zip(NEWS_TSV_COLUMNS, norm))
            if not record["news_id"] or any(ch.isspace() for ch in record["news_id"]):
                raise ImportInputError(f"{where}: field 'news_id': invalid news id {fields[0]!r}")
            if record["news_id"] in first_line:
                raise ImportInputError(f"{where}: field 'news_id': duplicate id {record['news_id']} "
                                       f"(first on line {first_line[record['news_id']]})")
            if not record["category"]:
                raise ImportInputError(f"{where}: field 'category': empty")
            for column in _ENTITY_COLUMNS:
                record[column] = record[column].strip() or "[]"
                try:
                    entities = json.loads(record[column])
                except json.JSONDecodeError as err:
                    raise ImportInputError(f"{where}: field '{column}': invalid JSON ({err.msg})") from err
                if not isinstance(entities, list) or not all(isinstance(e, dict) for e in entities):
                    raise ImportInputError(f"{where}: field '{column}': must be a JSON list of objects")
                entity_ids.update(str(e["WikidataId"]) for e in entities if e.get("WikidataId"))
            first_line[record["news_id"]] = line_no
            row = tuple(record[c] for c in NEWS_TSV_COLUMNS)
            changed += row != tuple(fields)
            rows.append(row)
    report.inputs[str(path)] = len(rows)
    if changed:
        report.notes.append(f"{path}: {changed} row(s) normalised (Unicode NFC, trimmed id/category, '[]' for "
                            "empty entities)")
    return rows, entity_ids


def _checked_vectors(path: Path) -> list[tuple[str, ...]]:
    """``Id<TAB>float ...`` rows (MIND's .vec), one dimension throughout; errors name file:line:field."""
    rows, dim = [], None
    with open(path, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            fields = line.rstrip("\n").rstrip("\r").rstrip("\t").split("\t")
            where = f"{path}:{line_no}"
            if not fields[0] or len(fields) < 2:
                raise ImportInputError(f"{where}: field 'row': expected an id then tab-separated floats")
            try:
                values = [float(v) for v in fields[1:]]
            except ValueError as err:
                raise ImportInputError(f"{where}: field 'vector': {err}") from err
            if not all(math.isfinite(v) for v in values):
                raise ImportInputError(f"{where}: field 'vector': non-finite value")
            if dim is None:
                dim = len(values)
            elif len(values) != dim:
                raise ImportInputError(f"{where}: field 'vector': {len(values)} values, earlier lines have {dim}")
            rows.append(tuple(fields))
    return rows


def import_mind_news_folder(source: Path, out: Path, dataset: str) -> ImportReport:
    """Normalise ``source/news.tsv`` and copy its vector files into ``out`` (news only: no behaviors)."""
    report = ImportReport(dataset, str(source), str(out), time_zone="not applicable (news only)")
    report.notes.append("input is a MIND news folder: news only; behaviors.tsv must come from elsewhere "
                        "(e.g. the raw event logs) before training")
    for column in NEWS_TSV_COLUMNS:
        report.map_field(f"news.tsv:{column}", f"news.tsv:{column}", "normalised (Unicode NFC)")
    news, entity_ids = _normalised_news(source / "news.tsv", report)
    vectors = {name: _checked_vectors(source / name) for name in VECTOR_FILES if (source / name).is_file()}
    if "entity_embedding.vec" in vectors:
        have = {row[0] for row in vectors["entity_embedding.vec"]}
        report.caveat_rows("entities_without_vector", str(source / "news.tsv"), sorted(entity_ids - have),
                           "WikidataId used in news.tsv without a row in entity_embedding.vec")
    with staged_dir(out) as staging:
        report.outputs["news.tsv"] = write_rows(staging / "news.tsv", news)
        for name, rows in vectors.items():
            report.outputs[name] = write_rows(staging / name, rows)
            report.inputs[str(source / name)] = len(rows)
        report.counts = {"news": len(news), "categories": len({r[1] for r in news}),
                         "entities_in_news": len(entity_ids)}
        report.write(staging)
    return report
