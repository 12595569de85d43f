"""Verification codes that let a customer look up their own ticket's progress.

Ticket numbers are sequential (``TD-20261123-000123``) and so guessable; the code is what
proves the person asking is the one who received the acknowledgement. It is 8 characters from
an alphabet without look-alikes (no 0/O, 1/I/L), about 39 bits from ``secrets``: with the
lookup's rate limits a guesser gets a few dozen tries a day against ~10^11 codes.

Only a keyed hash is kept, on the ticket (``progress_code_hash``), bound to the ticket number
so one hash cannot vouch for another ticket. The key is derived from the installation's
identity key under its own label, so the same secret never hashes two kinds of data the same
way. The code is in clear text only in the outbox row that delivers the acknowledgement; the
ticket's stored copy of that message shows it masked.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
LENGTH = 8
MASK = "********"
"""What stands for the code in the stored copy of the acknowledgement."""

_LABEL = b"tongdao/progress-code/v1"
_SEPARATORS = str.maketrans("", "", " -_\u3000")
_NO_MATCH = "0" * 64


def issue() -> str:
    """A fresh code, e.g. ``K7QM3ZTA``."""
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def normalize(typed: str) -> str | None:
    """The code as stored from what a customer typed: case, spaces and dashes do not matter
    (``k7qm-3zta``), nor full-width forms from a Chinese input method (``Ｋ７ＱＭ３ＺＴＡ``).
    ``None`` when it cannot be a code at all."""
    code = unicodedata.normalize("NFKC", typed[:64]).translate(_SEPARATORS).upper()
    if len(code) != LENGTH or any(c not in ALPHABET for c in code):
        return None
    return code


def _key(identity_key: bytes) -> bytes:
    return hmac.new(identity_key, _LABEL, hashlib.sha256).digest()


def digest(identity_key: bytes, number: str, code: str) -> str:
    """The keyed hash kept on the ticket (64 hex characters)."""
    message = f"{number}\x00{code}".encode()
    return hmac.new(_key(identity_key), message, hashlib.sha256).hexdigest()


def matches(identity_key: bytes, number: str, typed: str, stored: str | None) -> bool:
    """Whether ``typed`` is the ticket's code, compared in constant time.

    The hash is computed and compared even when the ticket has no code or the typed text is
    malformed, so the time taken does not tell a wrong code from an unknown ticket.
    """
    code = normalize(typed)
    candidate = digest(identity_key, number, code or "")
    same = hmac.compare_digest(candidate, stored or _NO_MATCH)
    return same and code is not None and stored is not None
