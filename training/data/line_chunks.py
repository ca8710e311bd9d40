"""Split a large text file into chunks of whole lines, keeping 1-based line numbers and the raw bytes.

Each :class:`LineChunk` carries its valid lines as an Arrow table (``line``: int64, ``text``: string with
the trailing newline removed, carriage returns kept) for vectorised parsing, and its undecodable lines
separately (the reason names the byte offset, as :func:`training.data.mind_reader.decode_line` does).
A chunk whose bytes are valid UTF-8 is converted without creating one Python object per line.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    from tqdm import tqdm

#: Default bytes read per chunk: large enough to amortise per-chunk overhead, small enough to stay bounded.
DEFAULT_CHUNK_BYTES = 32 * 1024 * 1024

log = logging.getLogger(__name__)


@dataclass
class LineChunk:
    """Whole lines ``first_line`` .. ``first_line + n_lines - 1`` of a file."""

    first_line: int
    data: bytes                      # the chunk's bytes, every line with its newline (the last may lack it)
    starts: np.ndarray               # byte offset of each line in ``data``, plus len(data) at the end
    table: pa.Table                  # valid UTF-8 lines: line (int64), text (without its newline; \r kept)
    undecodable: list[tuple[int, str]]  # (line number, reason) of lines that are not UTF-8

    @property
    def n_lines(self) -> int:
        return len(self.starts) - 1

    def raw(self, line: int) -> bytes:
        """The raw bytes of ``line`` (1-based, in this chunk), newline included when the file has it."""
        i = line - self.first_line
        return self.data[self.starts[i]:self.starts[i + 1]]


def _body(raw: bytes) -> bytes:
    return raw.rstrip(b"\n").rstrip(b"\r")


def decode_error(body: bytes) -> str | None:
    """The reason a line body is not UTF-8 (None when it is)."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as err:
        return f"invalid UTF-8 at byte {err.start}"
    return None


def _chunk(first_line: int, data: bytes) -> LineChunk:
    buf = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buf == 10) + 1
    if not len(ends) or ends[-1] != len(data):
        ends = np.append(ends, len(data))  # last line of the file without a newline
    starts = np.concatenate(([0], ends)).astype(np.int64)
    n = len(starts) - 1
    try:
        data.decode("utf-8")
        valid = None
    except UnicodeDecodeError:
        valid = np.ones(n, dtype=bool)
    undecodable: list[tuple[int, str]] = []
    if valid is not None:
        for i in range(n):
            reason = decode_error(_body(data[starts[i]:starts[i + 1]]))
            if reason:
                valid[i] = False
                undecodable.append((first_line + i, reason))
    lines = np.arange(first_line, first_line + n, dtype=np.int64)
    if valid is None:  # the whole chunk is UTF-8: wrap its bytes, newlines removed, as one Arrow string array
        has_newline = np.ones(n, dtype=np.int64)
        has_newline[-1] = data.endswith(b"\n")
        offsets = starts - np.concatenate(([0], np.cumsum(has_newline)))
        text = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data.replace(b"\n", b"")))
        table = pa.table({"line": lines, "text": text})
    else:
        keep = np.flatnonzero(valid)
        table = pa.table({
            "line": lines[keep],
            "text": pa.array([data[starts[i]:starts[i + 1]].rstrip(b"\n").decode("utf-8") for i in keep],
                             pa.large_string()),
        })
    return LineChunk(first_line, data, starts, table, undecodable)


def read_line_chunks(path: str | Path, chunk_bytes: int = DEFAULT_CHUNK_BYTES,
                     progress: bool = True) -> Iterator[LineChunk]:
    """Yield the file as consecutive chunks of whole lines (about ``chunk_bytes`` each; a longer line is one chunk).

    ``text`` lacks the newline but keeps any carriage return before it (strip it on the consumer side).
    """
    path = Path(path)
    size = path.stat().st_size
    bar = _progress(path, size) if progress else None
    next_line = 1
    carry = b""
    with open(path, "rb") as fh:
        while True:
            block = fh.read(chunk_bytes)
            if not block:
                break
            data = carry + block
            cut = data.rfind(b"\n") + 1
            if cut == 0:  # no complete line yet: keep reading
                carry = data
                continue
            carry = data[cut:]
            chunk = _chunk(next_line, data[:cut])
            next_line += chunk.n_lines
            if bar is not None:
                bar.update(cut)
            yield chunk
    if carry:
        chunk = _chunk(next_line, carry)
        if bar is not None:
            bar.update(len(carry))
        yield chunk
    if bar is not None:
        bar.close()


def _progress(path: Path, size: int) -> tqdm | None:
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency; logging keeps the bar optional
        log.info("reading %s (%.1f MB)", path, size / 1e6)
        return None
    return tqdm(total=size, unit="B", unit_scale=True, desc=f"reading {path.name}", leave=False,
                disable=size < 64 * 1024 * 1024)
