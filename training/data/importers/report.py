"""The import report: field mapping, dropped columns and rows (counted, with reasons), time zone, notes."""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPORT_FILE = "import_report.json"
_EXAMPLES = 5


@dataclass
class RowCount:
    """Rows of one input file that were dropped (or kept with a caveat), with a reason and a few examples."""

    file: str
    count: int
    reason: str
    examples: list[str] = field(default_factory=list)


@dataclass
class ImportReport:
    dataset: str
    source: str
    out: str = ""
    time_zone: str = ""
    inputs: dict[str, int] = field(default_factory=dict)         # input file -> rows read
    outputs: dict[str, int] = field(default_factory=dict)        # output file -> rows written
    counts: dict[str, int | list[str]] = field(default_factory=dict)  # news, impressions, ..., users; days
    field_mapping: list[dict[str, str]] = field(default_factory=list)
    dropped_columns: dict[str, dict[str, str]] = field(default_factory=dict)  # file -> column -> reason
    dropped_rows: dict[str, RowCount] = field(default_factory=dict)
    kept_rows_with_caveats: dict[str, RowCount] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def map_field(self, source: str, mind: str, rule: str = "as is") -> None:
        self.field_mapping.append({"source": source, "mind": mind, "rule": rule})

    def drop_columns(self, file: str, columns: Iterable[str], reason: str) -> None:
        for column in columns:
            self.dropped_columns.setdefault(file, {})[column] = reason

    def drop_rows(self, key: str, file: str, examples: Iterable[object], reason: str) -> None:
        """Record dropped rows under ``key``; ``examples`` is every dropped row's id (counted, 5 kept)."""
        self._add(self.dropped_rows, key, file, examples, reason)

    def caveat_rows(self, key: str, file: str, examples: Iterable[object], reason: str) -> None:
        """Record rows that were kept but deserve a note (e.g. candidates without article text)."""
        self._add(self.kept_rows_with_caveats, key, file, examples, reason)

    @staticmethod
    def _add(target: dict[str, RowCount], key: str, file: str, examples: Iterable[object], reason: str) -> None:
        listed = list(examples)
        entry = target.setdefault(key, RowCount(file, 0, reason))
        entry.count += len(listed)
        entry.examples.extend(str(e) for e in listed[: _EXAMPLES - len(entry.examples)])

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False)

    def write(self, directory: Path) -> Path:
        path = Path(directory) / REPORT_FILE
        path.write_text(self.to_json() + "\n", encoding="utf-8")
        return path

    def summary(self) -> str:
        """A short human-readable version of the report (what the CLI prints)."""
        lines = [f"imported {self.dataset} from {self.source} into {self.out}"]
        lines.append("  written: " + ", ".join(f"{name} {n} rows" for name, n in self.outputs.items()))
        lines.append("  " + ", ".join(f"{k} {v}" for k, v in self.counts.items() if k != "days"))
        days = self.counts.get("days")
        if isinstance(days, list) and days:
            lines.append(f"  days (UTC): {days[0]} .. {days[-1]} ({len(days)})")
        lines.append(f"  time zone: {self.time_zone}")
        for title, rows in (("dropped rows", self.dropped_rows), ("kept with caveats", self.kept_rows_with_caveats)):
            counted = [r for r in rows.values() if r.count]
            if counted:
                lines.append(f"  {title}:")
                lines.extend(f"    {r.count:>8}  {r.file}: {r.reason} (e.g. {', '.join(r.examples[:3])})"
                             for r in counted)
        for file, columns in self.dropped_columns.items():
            lines.append(f"  dropped columns of {file}: {', '.join(columns)}")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)
