"""The poll cursor: for each mailbox, the UIDVALIDITY and the last UID taken in.

IMAP promises that a folder's UIDs only grow while its UIDVALIDITY stays the same, so
"everything after UID n" is exactly what is new, across restarts and across processes. When
UIDVALIDITY changes (the mailbox was restored or moved to another server) the old UIDs mean
nothing: the folder is read again from the start, and the Message-ID dedupe drops what was
already taken in. The hub stores the cursor only after it stored the envelopes before it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Position:
    uidvalidity: int
    uid: int

    def dump(self) -> str:
        return f"{self.uidvalidity}:{self.uid}"

    @classmethod
    def load(cls, text: str | None) -> Position | None:
        """``"<uidvalidity>:<uid>"``; None for anything else."""
        if not text:
            return None
        validity, _, uid = text.partition(":")
        if not (validity.isdigit() and uid.isdigit()):
            return None
        return cls(int(validity), int(uid))


@dataclass(frozen=True, slots=True)
class Cursor:
    positions: dict[str, Position]

    @classmethod
    def load(cls, text: str | None) -> Cursor:
        """A cursor that cannot be read starts over: reading a mailbox again repeats nothing,
        because every message is keyed by its Message-ID."""
        try:
            data = json.loads(text) if text else {}
            boxes = data.get("mailboxes", {}) if isinstance(data, dict) else {}
            positions = {
                str(name): Position(int(value[0]), int(value[1]))
                for name, value in boxes.items()
                if isinstance(value, list) and len(value) == 2
            }
        except (ValueError, TypeError):
            positions = {}
        return cls(positions)

    def dump(self) -> str:
        boxes = {name: [p.uidvalidity, p.uid] for name, p in sorted(self.positions.items())}
        return json.dumps({"v": 1, "mailboxes": boxes}, separators=(",", ":"))

    def get(self, name: str) -> Position | None:
        return self.positions.get(name)

    def with_position(self, name: str, position: Position) -> Cursor:
        return Cursor({**self.positions, name: position})
