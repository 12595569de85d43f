"""Calls that arrive together, served by one database round (group commit).

The envelope store behind every ack and the connectors' shared state answer many small
concurrent calls whose cost is the transaction (and its disk flush), not the row. One runner
works through whatever waits, a batch at a time, and each caller is answered when the round
holding its item is done. An item submitted while a round runs waits for the next round, so
it sees every commit made before it was submitted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    """``run`` takes a batch and returns one result per item, in order; when it raises, every
    caller of the batch gets that error, or with ``split_on_failure`` the batch is served again
    one item at a time, so one bad item does not fail its neighbours."""

    def __init__(
        self,
        run: Callable[[list[T]], Awaitable[Sequence[R]]],
        max_batch: int,
        *,
        split_on_failure: bool,
    ) -> None:
        self._run = run
        self._max_batch = max_batch
        self._split_on_failure = split_on_failure
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._running = False
        self._runner: asyncio.Task[None] | None = None  # held so it is not collected mid-round

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._waiting.append((item, future))
        if not self._running:
            self._running = True
            self._runner = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
                await self._serve(batch)
        finally:
            self._running = False

    async def _serve(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._run([item for item, _ in batch])
        except Exception as exc:
            if self._split_on_failure and len(batch) > 1:
                for one in batch:
                    await self._serve([one])
                return
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
