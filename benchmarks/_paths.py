"""Import first (``import _paths``) in a benchmark: puts the repository root and its ``tests`` folder on
``sys.path``, so ``training`` and the test data builders (``from builders.ctr import ...``) import
without ``PYTHONPATH``."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for folder in reversed((ROOT, ROOT / "tests")):  # the root first: ``tests`` only adds ``builders``
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
