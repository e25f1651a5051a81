"""The journal's export as Parquet: the columns of the CSV export (`journal.EXPORT_COLUMNS`), typed.

Times are UTC timestamps in microseconds, `revision` a 32-bit integer, the debit and the credit exact decimals in
major units (`decimal(38, 3)`: three places hold every currency's minor unit, 30.000 for 30.00 USD), null where the
line is the other side; every other column is text. Rows go out in row groups of `ROWS` lines, so a month of any
size is written in bounded memory.
"""

from datetime import datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from billing.services.journal import EXPORT_COLUMNS, journal_lines
from core.money import minor_unit_exponent

ROWS = 50_000
_MONEY = pa.decimal128(38, 3)
SCHEMA = pa.schema(
    [
        ("entry", pa.string()),
        ("posted_at", pa.timestamp("us", tz="UTC")),
        ("effective_at", pa.timestamp("us", tz="UTC")),
        ("kind", pa.string()),
        ("source", pa.string()),
        ("revision", pa.int32()),
        ("currency", pa.string()),
        ("account_code", pa.string()),
        ("account", pa.string()),
        ("debit", _MONEY),
        ("credit", _MONEY),
    ]
)


def _major(amount: int, currency: str) -> Decimal:
    return Decimal(amount).scaleb(-minor_unit_exponent(currency)).quantize(Decimal("0.001"))


def _batch(columns: list[list[Any]]) -> pa.RecordBatch:
    return pa.record_batch(columns, schema=SCHEMA)


def journal_parquet(project_id: str, *, start: datetime, end: datetime, path: str) -> int:
    """Writes the project's journal lines of the entries effective in [start, end) to `path` as Parquet; returns
    the lines written."""
    written = 0
    with pq.ParquetWriter(path, SCHEMA, compression="zstd") as writer:
        columns: list[list[Any]] = [[] for _ in EXPORT_COLUMNS]
        for row in journal_lines(project_id, start=start, end=end, money=_major):
            for column, value in zip(columns, row, strict=True):
                column.append(value)
            if len(columns[0]) == ROWS:
                writer.write_batch(_batch(columns))
                written += ROWS
                columns = [[] for _ in EXPORT_COLUMNS]
        writer.write_batch(_batch(columns))  # the last rows (an empty month: the schema alone)
        written += len(columns[0])
    return written
