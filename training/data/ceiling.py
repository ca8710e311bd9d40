"""The demo generator's Bayes-optimal metrics for a day, shown beside every model's figures."""
from __future__ import annotations

from pathlib import Path

from training.data.demo.report import DemoReport

DEMO_REPORT_FILE = "demo_report.json"


def demo_ceiling(raw_dir: str | Path, day: str) -> dict[str, float] | None:
    """Metrics of the generator's true click probabilities on ``day``; None for data not from the generator."""
    path = Path(raw_dir) / DEMO_REPORT_FILE
    if not path.is_file():
        return None
    try:
        return DemoReport.from_json(path.read_text()).day(day)["ceiling"]
    except KeyError:
        return None
