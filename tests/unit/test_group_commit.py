"""Group commit: calls that arrive together share one round; a failure is one caller's."""

from __future__ import annotations

import asyncio

import pytest

from hub.group_commit import GroupCommit


async def test_calls_that_arrive_together_share_a_round_and_later_ones_wait_for_the_next() -> None:
    rounds: list[list[int]] = []
    began, release = asyncio.Event(), asyncio.Event()

    async def run(batch: list[int]) -> list[int]:
        rounds.append(batch)
        began.set()
        await release.wait()
        return [n * 10 for n in batch]

    commit = GroupCommit(run, max_batch=3, split_on_failure=False)
    first = [asyncio.create_task(commit.submit(n)) for n in range(5)]
    await began.wait()
    late = asyncio.create_task(commit.submit(5))  # the first round has begun without it
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*first, late) == [0, 10, 20, 30, 40, 50]
    assert rounds == [[0, 1, 2], [3, 4, 5]]


@pytest.mark.parametrize("split", [True, False])
async def test_a_failing_item_fails_only_its_caller_when_the_round_is_split(split: bool) -> None:
    async def run(batch: list[int]) -> list[int]:
        if 2 in batch:
            raise ValueError("two is refused")
        return batch

    commit = GroupCommit(run, max_batch=10, split_on_failure=split)
    results = await asyncio.gather(*(commit.submit(n) for n in range(4)), return_exceptions=True)
    refused = [isinstance(r, ValueError) for r in results]
    assert refused == ([False, False, True, False] if split else [True] * 4)
    assert await commit.submit(7) == 7  # the runner goes on after a failure
