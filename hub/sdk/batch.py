"""Batch import: how a connector offers to load a file of records (SDK 1.1).

Some peers hand cases over as files rather than pushes: a regulator's branch lets staff
download the day's transfers as a sheet. ``tongdao import <connector> FILE`` loads such a file.
The work is split so each side does what only it knows:

* the hub reads the file (CSV in UTF-8 or GB18030, XLSX, JSON Lines), finds which column holds
  which of the connector's fields (the connector's default labels, overridden by the
  operator's mapping), and stores what the connector returns through the same durable envelope
  store as every ack, counting what was loaded, what was already there, and what was rejected;
* the connector turns one row into an envelope with the *same external id its push uses*, so a
  case that arrives both ways (or a file loaded twice) is stored once, or rejects the row with
  reasons an operator can act on.

A connector offers it by also subclassing ``BatchImporter``::

    class KioskConnector(ChannelConnector[KioskConfig], BatchImporter):
        batch_fields = (BatchField("ticket_id", ("工单号",), required=True), ...)

        def batch_envelope(self, row: BatchRow) -> InboundEnvelope:
            ...  # raise RowRejected("ticket_id (工单号): missing") for a bad row
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hub.sdk.envelope import InboundEnvelope


@dataclass(frozen=True, slots=True)
class BatchField:
    """One field a row can carry. ``name`` is what the connector reads from ``BatchRow.values``
    (dotted names such as ``complainant.phone`` are fine); ``labels`` are the column headings
    recognised without any mapping (the peer's usual sheet, e.g. ``联系电话``).

    ``required`` fields must have a column (or a default in the mapping) for a tabular file to
    be loaded at all, so a sheet with a renamed column stops before anything is stored instead
    of rejecting every row."""

    name: str
    labels: tuple[str, ...] = ()
    required: bool = False
    description: str = ""

    def describe(self) -> str:
        """``name (label)`` as operators see it in reasons and errors."""
        return f"{self.name} ({self.labels[0]})" if self.labels else self.name


@dataclass(frozen=True, slots=True)
class ColumnMapping:
    """How an operator's files differ from the defaults: ``columns`` maps a heading to a field
    name, ``defaults`` gives a field's value for rows that leave it empty (a sheet without a
    ``转办类型`` column), ``sheet`` names the XLSX worksheet, ``encoding`` forces a CSV
    encoding instead of detecting it."""

    columns: Mapping[str, str] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    sheet: str | None = None
    encoding: str | None = None

    def overridden_by(self, other: ColumnMapping) -> ColumnMapping:
        """This mapping with ``other``'s entries winning (a mapping file over the config)."""
        return ColumnMapping(
            columns={**self.columns, **other.columns},
            defaults={**self.defaults, **other.defaults},
            sheet=other.sheet or self.sheet,
            encoding=other.encoding or self.encoding,
        )


@dataclass(frozen=True, slots=True)
class BatchRow:
    """One record of the file, already mapped to field names.

    ``number`` is how the operator finds the row again: the spreadsheet row (the heading row is
    1) or the JSON Lines line. ``values`` holds what the file holds: strings from CSV; strings,
    numbers, dates and datetimes from XLSX (a phone number typed into Excel arrives as an
    ``int``); any JSON value from JSON Lines. Empty cells are left out, and the mapping's
    defaults are filled in."""

    number: int
    values: Mapping[str, Any]
    source: str


class RowRejected(ValueError):
    """A row that cannot be loaded; each reason names the field and what is wrong with it."""

    def __init__(self, *reasons: str) -> None:
        super().__init__("; ".join(reasons))
        self.reasons: tuple[str, ...] = reasons or ("rejected",)


class BatchImporter(ABC):
    """Mixin for a ``ChannelConnector`` that can load a file of records."""

    batch_fields: ClassVar[tuple[BatchField, ...]]

    def batch_mapping(self) -> ColumnMapping:
        """The mapping from the connector's own config; a ``--mapping`` file overrides it."""
        return ColumnMapping()

    @abstractmethod
    def batch_envelope(self, row: BatchRow) -> InboundEnvelope:
        """Turn one row into an envelope, with the external id the connector's push would give
        the same record; raise ``RowRejected`` with reasons for a bad row. Must not store
        anything itself: the hub does, and counts duplicates by the external id."""
