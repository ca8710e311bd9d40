"""Validation findings for MIND files: every bad row is named by file, line, field and reason."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class RowIssue:
    """One bad row: where it is, which field is wrong and why."""

    file: str
    line: int  # 1-based line number in `file`
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: field '{self.field}': {self.reason}"


@dataclass
class FileValidation:
    """Outcome of reading one TSV file: good row count, issues, and the bad lines kept verbatim."""

    file: str
    n_rows: int = 0
    issues: list[RowIssue] = field(default_factory=list)
    quarantined: list[tuple[int, bytes]] = field(default_factory=list)  # (line number, raw line)

    @property
    def n_bad(self) -> int:
        return len(self.quarantined)

    @property
    def bad_fraction(self) -> float:
        return self.n_bad / self.n_rows if self.n_rows else 0.0

    def reject(self, line: int, raw: bytes, issues: list[RowIssue]) -> None:
        self.issues.extend(issues)
        self.quarantined.append((line, raw))

    def write_quarantine(self, directory: Path) -> Path | None:
        """Write bad lines verbatim to ``directory/<file name>`` and a ``.lines`` index; None when clean."""
        if not self.quarantined:
            return None
        directory.mkdir(parents=True, exist_ok=True)
        name = Path(self.file).name
        out = directory / name
        out.write_bytes(b"".join(raw if raw.endswith(b"\n") else raw + b"\n" for _, raw in self.quarantined))
        (directory / f"{name}.issues.jsonl").write_text(
            "".join(json.dumps(asdict(i)) + "\n" for i in self.issues), encoding="utf-8"
        )
        return out


class DataValidationError(ValueError):
    """Raised when bad rows exceed the allowed fraction; the message names the offending lines."""

    def __init__(self, validations: list[FileValidation], max_bad_fraction: float, shown: int = 20):
        self.validations = validations
        lines = []
        for v in validations:
            if v.n_bad:
                lines.append(
                    f"{v.file}: {v.n_bad} bad row(s) of {v.n_rows} "
                    f"({v.bad_fraction:.2%}; allowed {max_bad_fraction:.2%})"
                )
                lines.extend(f"  {issue}" for issue in v.issues[:shown])
                if len(v.issues) > shown:
                    lines.append(f"  ... and {len(v.issues) - shown} more issue(s)")
        super().__init__("invalid MIND data:\n" + "\n".join(lines))
