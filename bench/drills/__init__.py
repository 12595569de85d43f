"""Drills: the hub under the trouble a bank's production brings, proven by counting.

* ``crash``: ``tongdao serve`` and ``tongdao worker`` SIGKILLed mid-load (``crash.py``);
* ``outages``: the CRM, WeChat's API, the SMTP server and a webhook receiver each down for a
  while during load (``outages.py``);
* ``bad-input``: schemathesis against ``/openapi.json`` and hypothesis against the WeChat XML,
  MIME and 12378 CSV parsers (``bad_input.py``).

Each drill is one function with its sizes as arguments. The test suite (``tests/drills/``)
runs the short form; ``python -m bench.drills [crash|outages|bad-input|all] --long`` (``make
drills``) runs the long form of the very same code. A drill that finds a fault raises
``DrillFailed`` (an ``AssertionError``, so pytest reports it as a failed assertion).
"""

from __future__ import annotations


class DrillFailed(AssertionError):
    """What a drill proves did not hold."""


def fail(message: str) -> None:
    raise DrillFailed(message)
