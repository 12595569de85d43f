"""Reading a customer's answer to the satisfaction survey sent after resolution.

Only a message that is nothing but an answer counts ("5", "满意", "not satisfied"); anything
longer is the customer writing again, which reopens the ticket within the window.
"""

from __future__ import annotations

import re

SATISFIED = "satisfied"
UNSATISFIED = "unsatisfied"

_ANSWERS = {
    "1": UNSATISFIED,
    "2": UNSATISFIED,
    "3": SATISFIED,
    "4": SATISFIED,
    "5": SATISFIED,
    "满意": SATISFIED,
    "非常满意": SATISFIED,
    "基本满意": SATISFIED,
    "不满意": UNSATISFIED,
    "非常不满意": UNSATISFIED,
    "satisfied": SATISFIED,
    "very satisfied": SATISFIED,
    "unsatisfied": UNSATISFIED,
    "dissatisfied": UNSATISFIED,
    "very dissatisfied": UNSATISFIED,
    "not satisfied": UNSATISFIED,
}
_TRIM = re.compile(r"^[\s\W_]+|[\s\W_]+$")


def read_satisfaction(text: str) -> str | None:
    """``satisfied`` or ``unsatisfied`` when the whole message is a survey answer, else None.

    A score of 3 (基本满意, "basically satisfied") counts as satisfied, as bank surveys
    usually report it."""
    answer = _TRIM.sub("", text.strip().lower())
    return _ANSWERS.get(answer)
