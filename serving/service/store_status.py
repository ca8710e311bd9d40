"""The key-value candidate store as the service sees it: its current version, or why it cannot be read."""
from __future__ import annotations

import threading
from pathlib import Path

from training.retrieval.candidate_store import CandidateStore


class StoreStatus:
    """Opens ``CandidateStore(path, readonly=True)`` (again on each call until it exists) and reports its
    ``current_version()``; never raises: a missing or unreadable store is an ``error`` string."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._store: CandidateStore | None = None
        self._lock = threading.Lock()
        self.error: str | None = None
        self.version()

    def version(self) -> str | None:
        with self._lock:
            try:
                if self._store is None:
                    self._store = CandidateStore(self.path, readonly=True)
                version = self._store.current_version()
            except Exception as err:  # noqa: BLE001 - reported in /healthz, never fatal
                self.error = f"{type(err).__name__}: {err}"
                return None
            self.error = None if version is not None else f"candidate store {self.path} holds no version yet"
            return version

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
