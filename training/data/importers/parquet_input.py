"""Read a source parquet file, checking that each needed column is there with the expected type."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from training.data.importers.input_error import ImportInputError


def _is_int(t: pa.DataType) -> bool:
    return pa.types.is_integer(t)


def _is_str(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t)


def _is_list_of(inner: Callable[[pa.DataType], bool]) -> Callable[[pa.DataType], bool]:
    def check(t: pa.DataType) -> bool:
        is_list = pa.types.is_list(t) or pa.types.is_large_list(t)
        return is_list and (inner(t.value_type) or pa.types.is_null(t.value_type))
    return check


def _is_time(t: pa.DataType) -> bool:
    return pa.types.is_timestamp(t)


#: Column kinds: name -> (type check, description used in errors).
KINDS = {
    "int": (_is_int, "an integer"),
    "str": (_is_str, "a string"),
    "time": (_is_time, "a timestamp"),
    "list[int]": (_is_list_of(_is_int), "a list of integers"),
    "list[str]": (_is_list_of(_is_str), "a list of strings"),
    "list[time]": (_is_list_of(_is_time), "a list of timestamps"),
}


def read_checked(path: Path, columns: dict[str, str], not_null: tuple[str, ...] = ()) -> tuple[pd.DataFrame, list[str]]:
    """Read ``columns`` (name -> kind in :data:`KINDS`) of ``path``; returns (frame, every column of the file).

    Raises :class:`ImportInputError` naming the file and column when the file or a column is missing, a
    column has the wrong type, or a ``not_null`` column holds a null (with its 1-based row number).
    """
    path = Path(path)
    if not path.is_file():
        raise ImportInputError(f"{path}: file not found")
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise ImportInputError(f"{path}: not a readable parquet file ({err})") from err
    missing = [c for c in columns if c not in schema.names]
    if missing:
        raise ImportInputError(f"{path}: missing column(s) {', '.join(missing)} (has: {', '.join(schema.names)})")
    for name, kind in columns.items():
        check, description = KINDS[kind]
        if not check(schema.field(name).type):
            raise ImportInputError(f"{path}: column '{name}' must be {description}, got {schema.field(name).type}")
    table = pq.read_table(path, columns=list(columns))
    for name in not_null:
        column = table.column(name)
        if column.null_count:
            row = next(i for i, v in enumerate(column.is_null().to_pylist()) if v)
            raise ImportInputError(f"{path}: row {row + 1}: column '{name}' is null "
                                   f"({column.null_count} null row(s) in all)")
    return table.to_pandas(), list(schema.names)
