"""``tongdao import <connector> FILE``: load a file of records through a connector's batch import.

The hub reads the file and maps its headings; the connector (``hub.sdk.BatchImporter``) turns
each row into an envelope or rejects it; the envelopes go through the same durable store as a
push, so the unique ``(channel, external_id)`` makes a second load of the file, or a record
that was pushed too, a counted duplicate that changes nothing. Good rows are loaded, bad rows
are written to a reject file with their reasons, and nothing about a bad row stops the others.

What stops the whole file before anything is stored: a file that cannot be read, a mapping
that names unknown fields, and a required field with no column (a renamed heading would
otherwise reject every row).
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import io
import json
import tomllib
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from hub.registry import ConnectorError, Registry
from hub.sdk import (
    MIB,
    BatchField,
    BatchImporter,
    BatchRow,
    ColumnMapping,
    InboundEnvelope,
    Ingest,
    RowRejected,
)
from hub.settings import Settings

FORMATS = {
    ".csv": "csv",
    ".txt": "csv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
MAX_FILE_BYTES = 256 * MIB
MAX_CELL_CHARS = 1_000_000
MAX_ROWS = 1_000_000
"""Excel's own limit; a file claiming more (a zip bomb posing as a workbook) is refused."""
HEADING_SEARCH = 20
"""How many rows from the top may hold the heading row (under titles and notes)."""
STORE_CHUNK = 500
"""Rows stored together: the envelope store commits them in a couple of transactions."""

PROGRESS_EVERY = 200

Progress = Callable[[int, int], None]
"""Called with (rows done, rows in the file) as the import goes."""


class ImportFailed(Exception):
    """The file as a whole cannot be loaded; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One record as the file holds it: ``(heading, value)`` pairs in file order (duplicate
    headings kept), or ``problem`` when the record itself is unreadable (bad JSON)."""

    number: int
    items: tuple[tuple[str, Any], ...]
    problem: str | None = None
    text: str | None = None


@dataclass(frozen=True, slots=True)
class Source:
    """What a file holds: for CSV and XLSX, its ``records`` (row number, cells) with the heading
    row still among them (which row it is depends on the connector's fields, see
    ``Columns.tabulate``); for JSON Lines, its ``rows`` (keys vary by line)."""

    format: str
    encoding: str | None
    records: list[tuple[int, tuple[Any, ...]]] | None = None
    rows: list[SourceRow] | None = None


@dataclass
class ImportReport:
    path: Path
    format: str
    encoding: str | None
    rows: int = 0
    loaded: int = 0
    duplicate: int = 0
    rejected: int = 0
    empty: int = 0
    rejects_path: Path | None = None
    ignored_columns: tuple[str, ...] = ()

    def summary(self) -> str:
        text = f"loaded {self.loaded}, duplicate {self.duplicate}, rejected {self.rejected}"
        if self.empty:
            text += f" ({self.empty} empty row{'s' if self.empty != 1 else ''} skipped)"
        return text


# --- reading files --------------------------------------------------------------------------


def detect_format(path: Path, given: str | None = None) -> str:
    if given:
        if given not in {"csv", "xlsx", "jsonl"}:
            raise ImportFailed(f"unknown format {given!r}; use csv, xlsx or jsonl")
        return given
    suffix = path.suffix.lower()
    if suffix == ".xls":
        raise ImportFailed("old .xls workbooks are not read; save the sheet as .xlsx or CSV")
    if suffix not in FORMATS:
        raise ImportFailed(
            f"cannot tell the format of {path.name!r} from its extension; give --format csv, "
            "xlsx or jsonl"
        )
    return FORMATS[suffix]


def read_source(path: Path, file_format: str, mapping: ColumnMapping) -> Source:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImportFailed(f"cannot read {path}: {exc.strerror or exc}") from None
    if size > MAX_FILE_BYTES:
        raise ImportFailed(f"{path.name} is larger than {MAX_FILE_BYTES // MIB} MiB; split it")
    if file_format == "xlsx":
        return _read_xlsx(path, mapping.sheet)
    data = path.read_bytes()
    text, encoding = decode(data, mapping.encoding)
    if file_format == "jsonl":
        return Source("jsonl", encoding, rows=list(_jsonl_rows(text)))
    return _read_csv(text, encoding)


def decode(data: bytes, forced: str | None = None) -> tuple[str, str]:
    """The text of a file and the encoding it was in: a BOM decides; otherwise strict UTF-8,
    then GB18030 (what Excel on a Chinese Windows writes). Strict decoding means a file in
    neither never loads as mojibake."""
    if forced:
        try:
            codecs.lookup(forced)
            return data.decode(forced), forced
        except LookupError:
            raise ImportFailed(f"unknown encoding {forced!r}") from None
        except UnicodeDecodeError as exc:
            raise ImportFailed(f"the file is not {forced} (byte {exc.start})") from None
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return data.decode(encoding), encoding
            except UnicodeDecodeError as exc:
                raise ImportFailed(f"the file starts like {encoding} but is not") from exc
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030"), "gb18030"
    except UnicodeDecodeError as exc:
        raise ImportFailed(
            f"the file is neither UTF-8 nor GB18030 (unreadable byte at {exc.start}); "
            'give its encoding in the mapping file (encoding = "...")'
        ) from None


def _read_csv(text: str, encoding: str) -> Source:
    # Excel writes commas, or tabs for "Unicode text"; a title line above may have neither.
    top = "\n".join(text.splitlines()[:HEADING_SEARCH])
    delimiter = "\t" if top.count("\t") > top.count(",") else ","
    csv.field_size_limit(max(csv.field_size_limit(), MAX_CELL_CHARS))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    records = []
    try:
        for record in reader:
            records.append(record)
            if len(records) > MAX_ROWS:
                raise ImportFailed(f"the file has more than {MAX_ROWS} rows; split it")
    except csv.Error as exc:
        raise ImportFailed(f"the CSV is malformed near line {reader.line_num}: {exc}") from None
    return Source("csv", encoding, records=[(n, tuple(r)) for n, r in enumerate(records, 1)])


def _read_xlsx(path: Path, sheet: str | None) -> Source:
    from openpyxl import load_workbook  # slow to import; only sheets need it
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        # openpyxl parses the workbook's XML with defusedxml when it is installed (it is).
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError) as exc:
        raise ImportFailed(f"{path.name} is not a readable XLSX workbook: {exc}") from None
    try:
        if sheet is not None:
            if sheet not in workbook.sheetnames:
                names = ", ".join(workbook.sheetnames)
                raise ImportFailed(f"no sheet {sheet!r} in {path.name} (sheets: {names})")
            worksheet = workbook[sheet]
        else:
            worksheet = workbook.worksheets[0]
        records = []
        for number, values in enumerate(worksheet.iter_rows(values_only=True), start=1):
            if number > MAX_ROWS:
                raise ImportFailed(f"{path.name} has more than {MAX_ROWS} rows; split it")
            records.append((number, tuple(values)))
    finally:
        workbook.close()
    return Source("xlsx", None, records=records)


def _jsonl_rows(text: str) -> Iterable[SourceRow]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            yield SourceRow(number, ())
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as exc:
            yield SourceRow(number, (), problem=f"not valid JSON: {exc}", text=line)
            continue
        if not isinstance(record, dict):
            yield SourceRow(number, (), problem="a JSON object is expected", text=line)
            continue
        yield SourceRow(number, tuple(record.items()), text=line)


# --- mapping --------------------------------------------------------------------------------


def load_mapping(path: Path) -> ColumnMapping:
    """A mapping file::

    sheet = "转办清单"          # XLSX: which worksheet (default: the first)
    encoding = "gb18030"       # CSV: force an encoding (default: detected)
    [columns]                  # heading in the file = field of the connector
    "投诉编号" = "transfer_id"
    [defaults]                 # field = value, for rows that leave it empty
    transfer_type = "assign"
    """
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ImportFailed(f"cannot read the mapping {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ImportFailed(f"the mapping {path.name} is not valid TOML: {exc}") from None
    unknown = sorted(set(raw) - {"columns", "defaults", "sheet", "encoding"})
    if unknown:
        raise ImportFailed(
            f"the mapping {path.name} has unknown key(s) {', '.join(unknown)}; "
            "use [columns], [defaults], sheet, encoding"
        )
    columns, defaults = raw.get("columns", {}), raw.get("defaults", {})
    if not isinstance(columns, dict) or not all(isinstance(v, str) for v in columns.values()):
        raise ImportFailed(f'[columns] in {path.name}: give "heading" = "field" pairs')
    if not isinstance(defaults, dict):
        raise ImportFailed(f"[defaults] in {path.name}: give field = value pairs")
    for key in ("sheet", "encoding"):
        if key in raw and not isinstance(raw[key], str):
            raise ImportFailed(f"{key} in {path.name} must be a string")
    return ColumnMapping(
        columns={k.strip(): v.strip() for k, v in columns.items()},
        defaults=defaults,
        sheet=raw.get("sheet"),
        encoding=raw.get("encoding"),
    )


def parse_assignments(pairs: Sequence[str]) -> dict[str, str]:
    """``--set field=value`` options as defaults."""
    defaults: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ImportFailed(f"--set {pair!r}: write it as field=value")
        defaults[name.strip()] = value.strip()
    return defaults


def mapping_from(
    defaults: Mapping[str, Any] | None = None, base: ColumnMapping | None = None
) -> ColumnMapping:
    """A mapping file's contents (or nothing) with ``--set`` defaults on top."""
    return (base or ColumnMapping()).overridden_by(ColumnMapping(defaults=dict(defaults or {})))


class Columns:
    """Which field each heading holds: the mapping's ``[columns]`` first, then the field's own
    name, then its default labels. A heading mapped to ``""`` is ignored on purpose."""

    def __init__(self, fields: Sequence[BatchField], mapping: ColumnMapping) -> None:
        self._fields = {f.name: f for f in fields}
        self._mapping = mapping
        self._labels = {label: f.name for f in fields for label in f.labels}
        unknown = sorted(
            {v for v in mapping.columns.values() if v and v not in self._fields}
            | {k for k in mapping.defaults if k not in self._fields}
        )
        if unknown:
            raise ImportFailed(
                f"the mapping names unknown field(s) {', '.join(unknown)}; fields: "
                + ", ".join(f.describe() for f in fields)
            )

    def field_of(self, heading: str) -> str | None:
        heading = heading.strip().lstrip("\ufeff")
        if heading in self._mapping.columns:
            return self._mapping.columns[heading] or None
        if heading in self._fields:
            return heading
        return self._labels.get(heading)

    def tabulate(self, source: Source) -> tuple[tuple[str, ...], list[SourceRow]]:
        """The heading row and the rows under it. The heading row is the first of the first
        ``HEADING_SEARCH`` rows that names any field: sheets often carry a title or a note
        above it. Without one, the first non-empty row is taken, and the required-field
        check says what is missing."""
        records = source.records or []
        candidates = [(i, r) for i, (_, r) in enumerate(records[:HEADING_SEARCH]) if _filled(r)]
        if not candidates:
            raise ImportFailed("the file is empty")
        index, heading_row = next(
            (
                (i, r)
                for i, r in candidates
                if any(self.field_of(_heading(c)) for c in r if not _empty(c))
            ),
            candidates[0],
        )
        headings = tuple(_heading(c) for c in heading_row)
        rows = [
            SourceRow(number, tuple(zip(headings, cells, strict=False)))
            for number, cells in records[index + 1 :]
        ]
        return headings, rows

    def check_headings(self, headings: Sequence[str]) -> tuple[str, ...]:
        """Refuse a tabular file whose headings cannot fill the required fields, or that has
        two columns for one field; return the headings that hold no field."""
        holders: dict[str, list[str]] = {}
        ignored = []
        for heading in headings:
            name = self.field_of(heading)
            if name is None:
                if heading:
                    ignored.append(heading)
                continue
            holders.setdefault(name, []).append(heading)
        doubled = {name: hs for name, hs in holders.items() if len(hs) > 1}
        if doubled:
            name, hs = sorted(doubled.items())[0]
            raise ImportFailed(
                f"columns {', '.join(repr(h) for h in hs)} all hold {name}; map one of them "
                'to another field or to "" in the mapping\'s [columns]'
            )
        missing = [
            f
            for f in self._fields.values()
            if f.required
            and f.name not in holders
            and f.name not in self._mapping.defaults
            and f.name.partition(".")[0] not in holders
        ]
        if missing:
            raise ImportFailed(
                "the file has no column for "
                + ", ".join(f.describe() for f in missing)
                + '; map your headings in a mapping file ([columns] "heading" = "field") '
                "or give [defaults]"
            )
        return tuple(ignored)

    def values(self, row: SourceRow) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for heading, value in row.items:
            if _empty(value):
                continue
            name = self.field_of(heading)
            if name is not None:
                values[name] = value
        return values

    def with_defaults(self, values: dict[str, Any]) -> dict[str, Any]:
        return {**self._mapping.defaults, **values}


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _filled(cells: Sequence[Any]) -> bool:
    return any(not _empty(c) for c in cells)


def _heading(cell: Any) -> str:
    return "" if cell is None else str(cell).strip().lstrip("\ufeff")


# --- loading --------------------------------------------------------------------------------


@dataclass
class _Rejects:
    format: str
    headings: tuple[str, ...] | None
    rows: list[tuple[SourceRow, tuple[str, ...]]] = field(default_factory=list)

    def write(self, path: Path) -> None:
        """Bad rows with their reasons, in a file the operator can fix and load again: a CSV
        (UTF-8 with BOM, so Excel shows the Chinese) with the original columns, or JSON
        Lines for a JSON Lines input."""
        path.parent.mkdir(parents=True, exist_ok=True)
        if self.format == "jsonl":
            with path.open("w", encoding="utf-8") as out:
                for row, reasons in self.rows:
                    record: dict[str, Any] = {"line": row.number, "reasons": list(reasons)}
                    if row.items:
                        record["record"] = dict(row.items)
                    elif row.text is not None:
                        record["text"] = row.text
                    out.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            return
        headings = list(self.headings or ())
        with path.open("w", encoding="utf-8-sig", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["row", "reasons", *headings])
            for row, reasons in self.rows:
                cells = [_cell_text(v) for _, v in row.items]
                cells += [""] * (len(headings) - len(cells))
                writer.writerow([row.number, "; ".join(reasons), *cells])


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime | date | time):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def default_rejects_path(path: Path, file_format: str) -> Path:
    suffix = "jsonl" if file_format == "jsonl" else "csv"
    return path.with_name(f"{path.stem}.rejects.{suffix}")


async def import_rows(
    importer: BatchImporter,
    ingest: Ingest,
    source: Source,
    *,
    source_name: str,
    mapping: ColumnMapping,
    rejects_path: Path,
    progress: Progress | None = None,
) -> ImportReport:
    """Load every row of ``source`` through ``importer`` into ``ingest``; write the rejects."""
    columns = Columns(importer.batch_fields, mapping)
    report = ImportReport(Path(source_name), source.format, source.encoding)
    headings: tuple[str, ...] | None = None
    rows = source.rows or []
    if source.records is not None:
        headings, rows = columns.tabulate(source)
        report.ignored_columns = columns.check_headings(headings)
    rejects = _Rejects(source.format, headings)
    pending: list[tuple[SourceRow, InboundEnvelope]] = []
    total = len(rows)

    async def store() -> None:
        try:
            results = await asyncio.gather(*(ingest.accept(e) for _, e in pending))
        except Exception as exc:
            raise ImportFailed(
                f"storing failed near row {pending[0][0].number}: {type(exc).__name__}: {exc}; "
                "rows before it are stored, and loading the file again counts them as duplicates"
            ) from exc
        for result in results:
            if result.created:
                report.loaded += 1
            else:
                report.duplicate += 1
        pending.clear()

    for done, row in enumerate(rows, start=1):
        report.rows += 1
        if row.problem is not None:
            rejects.rows.append((row, (row.problem,)))
        else:
            values = columns.values(row)
            if not values:
                report.empty += 1
            else:
                try:
                    envelope = importer.batch_envelope(
                        BatchRow(row.number, columns.with_defaults(values), source_name)
                    )
                except RowRejected as exc:
                    rejects.rows.append((row, exc.reasons))
                except Exception as exc:  # a connector bug must not lose the other rows
                    rejects.rows.append(
                        (row, (f"the connector failed on this row: {type(exc).__name__}: {exc}",))
                    )
                else:
                    pending.append((row, envelope))
        if len(pending) >= STORE_CHUNK:
            await store()
        if progress is not None and done % PROGRESS_EVERY == 0:
            progress(done, total)
    if pending:
        await store()
    if progress is not None:
        progress(total, total)
    report.rejected = len(rejects.rows)
    report.rows -= report.empty
    rejects.write(rejects_path)
    report.rejects_path = rejects_path
    return report


def importer_for(registry: Registry, name: str) -> BatchImporter:
    connector = registry.get(name)
    if connector is None:
        raise ImportFailed(f"connector {name!r} is not enabled: add a [connectors.{name}] table")
    if not isinstance(connector, BatchImporter):
        raise ImportFailed(f"connector {name!r} offers no batch import")
    return connector


async def import_path(
    importer: BatchImporter,
    ingest: Ingest,
    path: Path,
    *,
    file_format: str | None = None,
    mapping: ColumnMapping | None = None,
    rejects_path: Path | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Read ``path`` and load it; ``mapping`` overrides the connector's configured one."""
    merged = importer.batch_mapping().overridden_by(mapping or ColumnMapping())
    fmt = detect_format(path, file_format)
    # Reading a large file is blocking work; keep the event loop free.
    source = await asyncio.to_thread(read_source, path, fmt, merged)
    report = await import_rows(
        importer,
        ingest,
        source,
        source_name=path.name,
        mapping=merged,
        rejects_path=rejects_path or default_rejects_path(path, fmt),
        progress=progress,
    )
    report.path = path
    return report


async def run_import(
    settings: Settings,
    connector: str,
    path: Path,
    *,
    file_format: str | None = None,
    mapping: ColumnMapping | None = None,
    rejects_path: Path | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """What ``tongdao import`` runs: the hub's connectors and envelope store, no workers (a
    running ``serve`` or ``worker`` turns the stored envelopes into tickets)."""
    from hub.runtime import Hub, NotMigrated

    if connector not in settings.connectors:
        raise ImportFailed(f"no [connectors.{connector}] table in the configuration")
    try:
        hub = Hub(settings)
    except ConnectorError as exc:
        raise ImportFailed(str(exc)) from None
    try:
        try:
            await hub.open(migrate=False)
        except NotMigrated as exc:
            raise ImportFailed(str(exc)) from None
        return await import_path(
            importer_for(hub.registry, connector),
            hub.envelopes,
            path,
            file_format=file_format,
            mapping=mapping,
            rejects_path=rejects_path,
            progress=progress,
        )
    finally:
        await hub.close()


__all__ = [
    "Columns",
    "ImportFailed",
    "ImportReport",
    "Source",
    "SourceRow",
    "decode",
    "detect_format",
    "import_path",
    "import_rows",
    "importer_for",
    "load_mapping",
    "mapping_from",
    "parse_assignments",
    "read_source",
    "run_import",
]
