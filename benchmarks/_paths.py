"""Import first (``import _paths``) in a benchmark: puts the repository root and its ``tests`` folder on
``sys.path``, so ``training``, the test data builders (``from builders.ctr import ...``) and the
``/metrics`` reader (``prometheus_text``) import without ``PYTHONPATH``."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for folder in reversed((ROOT, ROOT / "tests")):  # the root first: ``tests`` only adds its helpers
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
