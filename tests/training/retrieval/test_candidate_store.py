"""CandidateStore: versioned atomic writes, pruning, read-only access and reads during a write."""
from __future__ import annotations

import sqlite3
import threading

import pandas as pd
import pytest

from training.retrieval import CandidateStore
from training.retrieval import candidate_store as store_module


def candidates(version_tag: str, n_triggers: int = 3, per: int = 4, path: str = "union") -> pd.DataFrame:
    rows = [(f"T{t}", path, r, f"{version_tag}-N{t}-{r}", 1.0 / (1 + r))
            for t in range(n_triggers) for r in range(per)]
    return pd.DataFrame(rows, columns=["trigger_id", "path", "rank", "news_id", "score"])


def test_write_lookup_versions(tmp_path):
    with CandidateStore(tmp_path / "c.sqlite") as store:
        assert store.current_version() is None and store.lookup("T0") == []
        frame = pd.concat([candidates("a"), candidates("a", path="coclick", per=2)]).sample(frac=1, random_state=0)
        assert store.write("r1", frame, meta={"run": 1}) == 6
        assert store.current_version() == "r1"
        assert store.lookup("T1") == [("a-N1-0", 1.0), ("a-N1-1", 0.5), ("a-N1-2", pytest.approx(1 / 3)),
                                      ("a-N1-3", 0.25)]
        assert [n for n, _ in store.lookup("T1", path="coclick")] == ["a-N1-0", "a-N1-1"]
        assert store.lookup("unknown") == []
        assert store.paths() == ["coclick", "union"]
        store.write("r2", candidates("b"))
        many = store.lookup_many(["T0", "zz"])
        assert many["T0"][0][0] == "b-N0-0" and many["zz"] == []
        assert store.lookup("T0", version="r1")[0][0] == "a-N0-0"
        listed = store.versions()
        assert [v["version"] for v in listed] == ["r2", "r1"]
        assert listed[0]["current"] and not listed[1]["current"]
        assert listed[1]["meta"] == {"run": 1} and listed[1]["n_triggers"] == 3 and "T" in listed[1]["created"]


def test_write_errors_and_pruning(tmp_path):
    store = CandidateStore(tmp_path / "c.sqlite")
    with pytest.raises(ValueError, match="news_id"):
        store.write("r0", candidates("a").drop(columns="news_id"))
    for i in range(5):
        store.write(f"r{i}", candidates(str(i)), keep=3)
    assert [v["version"] for v in store.versions()] == ["r4", "r3", "r2"]
    assert store.lookup("T0", version="r0") == []
    with pytest.raises(ValueError, match="already exists"):
        store.write("r4", candidates("x"))
    assert store.lookup("T0")[0][0] == "4-N0-0"
    store.close()


def test_readonly(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.sqlite"):
        CandidateStore(tmp_path / "missing.sqlite", readonly=True)
    with CandidateStore(tmp_path / "c.sqlite") as writer:
        writer.write("r1", candidates("a"))
    reader = CandidateStore(tmp_path / "c.sqlite", readonly=True)
    assert reader.current_version() == "r1" and reader.lookup("T2")[0][0] == "a-N2-0"
    with pytest.raises(PermissionError):
        reader.write("r2", candidates("b"))
    reader.close()


def test_crash_mid_write_keeps_current(tmp_path, monkeypatch):
    store = CandidateStore(tmp_path / "c.sqlite")
    store.write("good", candidates("a"))
    real_pack = store_module._pack
    # a bad row at the end: sqlite fails half-way through inserting the version's rows
    monkeypatch.setattr(store_module, "_pack", lambda frame: real_pack(frame) + [("T9", "union", {"bad": 1}, b"")])
    with pytest.raises(sqlite3.Error):
        store.write("broken", candidates("b", n_triggers=50))
    monkeypatch.undo()
    assert store.current_version() == "good"
    assert [v["version"] for v in store.versions()] == ["good"]
    assert store.lookup("T0")[0][0] == "a-N0-0"
    assert store.write("broken", candidates("b")) == 3  # nothing of the failed write was left behind
    store.close()


def test_reader_sees_complete_versions_during_big_writes(tmp_path):
    path = tmp_path / "c.sqlite"
    n_triggers, per = 4000, 10
    writer = CandidateStore(path)
    writer.write("v0", candidates("v0", n_triggers, per))
    probes = [f"T{i}" for i in range(0, n_triggers, 400)]
    seen, errors, stop = set(), [], threading.Event()

    def read() -> None:
        reader = CandidateStore(path, readonly=True)
        try:
            while not stop.is_set():
                got = reader.lookup_many(probes)
                tags = {n.split("-")[0] for lst in got.values() for n, _ in lst}
                sizes = {len(lst) for lst in got.values()}
                if len(tags) != 1 or sizes != {per}:
                    errors.append((tags, sizes))
                seen.update(tags)
        finally:
            reader.close()

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for i in range(1, 4):
            writer.write(f"v{i}", candidates(f"v{i}", n_triggers, per))
    finally:
        stop.set()
        thread.join(timeout=30)
    writer.close()
    assert not errors, errors[:3]
    assert len(seen) >= 2  # the reader actually read across at least one switch
