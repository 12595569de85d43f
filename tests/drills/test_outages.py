"""The outage drill, short form (``bench/drills/outages.py``; ``python -m bench.drills outages
--long`` is the long one): each peer down a while during load; acks do not wait on it,
deliveries wait and arrive when it is back, nothing is lost or sent twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.drills import outages


@pytest.mark.parametrize("peer", outages.PEERS)
async def test_a_peer_down_during_load_slows_no_ack_and_loses_or_doubles_no_delivery(
    peer: str, sqlite_url: str, tmp_path: Path
) -> None:
    counts = await outages.peer_outage(peer, sqlite_url, tmp_path, **outages.SHORT)
    print(f"\n[outage: {peer}] {counts}")
