"""DuckDB warehouse: DDL generated from the schemas, batched idempotent upserts.

Writes are idempotent by primary key (``churnwatch.primary_key`` in the ``.avsc``):

* event, alert and dead-letter rows: the first write wins (``ON CONFLICT DO NOTHING``),
  so a redelivered message or a timer that fires twice never doubles a row;
* tables with ``churnwatch.version_field`` (aggregates: ``updated_at``): a later pane
  replaces the row for its window, an older one never overwrites a newer one.

Rows travel as dicts with timestamps as epoch milliseconds; a batch becomes one Arrow
table and one ``INSERT ... SELECT``, not a statement per row.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from churnwatch.schemas import FieldSpec, TableSpec, table, tables

_PRIMITIVE_SQL = {
    "string": "VARCHAR",
    "enum": "VARCHAR",
    "int": "INTEGER",
    "long": "BIGINT",
    "float": "REAL",
    "double": "DOUBLE",
    "boolean": "BOOLEAN",
    "bytes": "BLOB",
}
_PRIMITIVE_ARROW = {
    "string": pa.string(),
    "enum": pa.string(),
    "int": pa.int32(),
    "long": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "bytes": pa.binary(),
}


def sql_type(spec: FieldSpec) -> str:
    if spec.is_timestamp:
        return "TIMESTAMP"  # UTC, naive: what BI tools read without surprises
    if spec.avro_type == "array":
        return f"{_PRIMITIVE_SQL[spec.items or 'string']}[]"
    if spec.avro_type == "map":
        return f"MAP(VARCHAR, {_PRIMITIVE_SQL[spec.items or 'string']})"
    return _PRIMITIVE_SQL[spec.avro_type]


def arrow_type(spec: FieldSpec) -> pa.DataType:
    if spec.is_timestamp:
        return pa.timestamp("ms")
    if spec.avro_type == "array":
        return pa.list_(_PRIMITIVE_ARROW[spec.items or "string"])
    if spec.avro_type == "map":
        return pa.map_(pa.string(), _PRIMITIVE_ARROW[spec.items or "string"])
    return _PRIMITIVE_ARROW[spec.avro_type]


def arrow_schema(spec: TableSpec) -> pa.Schema:
    return pa.schema([pa.field(c.name, arrow_type(c), nullable=c.nullable) for c in spec.columns])


def quote_ident(name: str) -> str:
    """A DuckDB identifier in double quotes: a table or column name is never SQL text (a
    table called ``x; DROP TABLE y`` in a file must stay a name)."""
    return '"' + name.replace('"', '""') + '"'


def _columns(names: Iterable[str]) -> str:
    return ", ".join(quote_ident(n) for n in names)


def ddl(spec: TableSpec) -> str:
    """CREATE TABLE statement for one table, with column comments left to COMMENT ON."""
    lines = [
        f"    {quote_ident(c.name)} {sql_type(c)}{'' if c.nullable else ' NOT NULL'}"
        for c in spec.columns
    ]
    if spec.primary_key:
        lines.append(f"    PRIMARY KEY ({_columns(spec.primary_key)})")
    body = ",\n".join(lines)
    return f"CREATE TABLE IF NOT EXISTS {quote_ident(spec.name)} (\n{body}\n)"


def _comment_statements(spec: TableSpec) -> list[str]:
    def quote(text: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    table_sql = quote_ident(spec.name)
    out = [f"COMMENT ON TABLE {table_sql} IS {quote(spec.record.doc)}"]
    out += [
        f"COMMENT ON COLUMN {table_sql}.{quote_ident(c.name)} IS {quote(c.doc)}"
        for c in spec.columns
        if c.doc
    ]
    return out


class DuckDBWarehouse:
    """One DuckDB file; thread-safe; tables created on first use."""

    _instances: dict[str, DuckDBWarehouse] = {}
    _instances_lock = threading.Lock()

    def __init__(self, path: str | Path, read_only: bool = False) -> None:
        self.path = str(path)
        self.read_only = read_only
        if not read_only:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._con = duckdb.connect(self.path, read_only=read_only)
        self._ready: set[str] = set()

    @classmethod
    def shared(cls, path: str | Path) -> DuckDBWarehouse:
        """Process-wide instance per file: DuckDB allows one writer process per file."""
        key = str(Path(path).resolve())
        with cls._instances_lock:
            inst = cls._instances.get(key)
            if inst is None or inst._con is None:
                inst = cls._instances[key] = cls(path)
            return inst

    @classmethod
    def close_all(cls) -> None:
        with cls._instances_lock:
            for inst in cls._instances.values():
                inst.close()
            cls._instances.clear()

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None

    def ensure_tables(self, names: Iterable[str] | None = None) -> None:
        with self._lock:
            for name in names or tables():
                if name in self._ready:
                    continue
                spec = table(name)
                self._con.execute(ddl(spec))
                for statement in _comment_statements(spec):
                    self._con.execute(statement)
                self._ready.add(name)

    def upsert(self, table_name: str, rows: list[Mapping[str, Any]]) -> int:
        """Write rows idempotently; returns how many rows the batch held after key dedupe."""
        if not rows:
            return 0
        spec = table(table_name)
        batch = _last_per_key(spec, rows)
        arrow = pa.Table.from_pylist(
            [spec.row(row) for row in batch],
            schema=arrow_schema(spec),
        )
        columns = _columns(spec.column_names)
        target = quote_ident(table_name)
        conflict = "DO NOTHING"
        version = spec.version_field
        if version:
            updates = ", ".join(
                f"{quote_ident(c)} = excluded.{quote_ident(c)}"
                for c in spec.column_names
                if c not in spec.primary_key
            )
            conflict = (
                f"DO UPDATE SET {updates} "
                f"WHERE excluded.{quote_ident(version)} >= {target}.{quote_ident(version)}"
            )
        on_conflict = (
            f"ON CONFLICT ({_columns(spec.primary_key)}) {conflict}" if spec.primary_key else ""
        )
        with self._lock:
            self.ensure_tables([table_name])
            self._con.register("_churnwatch_batch", arrow)
            try:
                self._con.execute(
                    f"INSERT INTO {target} ({columns}) "
                    f"SELECT {columns} FROM _churnwatch_batch {on_conflict}"
                )
            finally:
                self._con.unregister("_churnwatch_batch")
        return len(batch)

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple]:
        with self._lock:
            return self._con.execute(sql, params or []).fetchall()

    def query_df(self, sql: str):
        """Query result as a pandas DataFrame (for the quality checkpoint)."""
        with self._lock:
            return self._con.execute(sql).df()

    def count(self, table_name: str) -> int:
        return self.query(f"SELECT count(*) FROM {quote_ident(table_name)}")[0][0]


class WarehouseUnavailable(RuntimeError):
    """The DuckDB file is missing or another process holds its write lock."""


def open_existing(path: str | Path, read_only: bool = False) -> DuckDBWarehouse:
    """Open a warehouse file that must exist, saying clearly when it is missing or locked.

    DuckDB lets one process write a file; a running pipeline holds that lock, and then
    even a read-only open fails. The error names the file and what to do about it.
    """
    path = Path(path)
    if not path.exists():
        raise WarehouseUnavailable(f"no DuckDB warehouse at {path}")
    try:
        return DuckDBWarehouse(path, read_only=read_only)
    except (duckdb.IOException, duckdb.ConnectionException) as exc:
        raise WarehouseUnavailable(
            f"DuckDB warehouse {path} is locked by another process (a running pipeline or "
            f"demo?); stop it or wait until it finishes, then try again ({exc})"
        ) from None


def _last_per_key(spec: TableSpec, rows: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """One row per primary key within a batch (DuckDB rejects a key twice in one INSERT).

    With a version field the highest version wins; otherwise the first row wins, matching
    the first-write-wins rule across batches.
    """
    if not spec.primary_key:
        return list(rows)
    version = spec.version_field
    chosen: dict[tuple, Mapping[str, Any]] = {}
    for row in rows:
        key = tuple(row.get(k) for k in spec.primary_key)
        if key not in chosen or (
            version and (row.get(version) or 0) >= (chosen[key].get(version) or 0)
        ):
            chosen[key] = row
    return list(chosen.values())
