"""Calls that arrive together are scored together."""

import asyncio
from collections.abc import Callable

from schemas.transaction import Transaction

Waiting = list[tuple[Transaction, bool, asyncio.Future[bytes]]]


class Coalescer:
    """``/predict`` calls that arrive in the same turn of the event loop are scored together:
    one feature-state read and one model call for all of them. Under load those per-call
    costs were most of a request's; alone, a call waits for nothing but its own turn.

    A card appears at most once per group, so each answer sees only the stored state, exactly
    as it would alone (the API never writes the state).
    """

    def __init__(
        self, score: Callable[[list[Transaction], list[bool]], list[bytes]], limit: int
    ) -> None:
        self.score, self.limit = score, limit
        self.waiting: Waiting = []

    async def __call__(self, transaction: Transaction, late: bool = False) -> bytes:
        loop = asyncio.get_running_loop()
        if not self.waiting:
            loop.call_soon(self._flush)  # after the callbacks already due: they may join
        answer: asyncio.Future[bytes] = loop.create_future()
        self.waiting.append((transaction, late, answer))
        return await answer

    def _flush(self) -> None:
        waiting, self.waiting = self.waiting, []
        while waiting:
            group: Waiting = []
            later: Waiting = []
            cards: set[str] = set()
            for item in waiting:
                card = item[0].card_id
                if card in cards or len(group) >= self.limit:
                    later.append(item)
                else:
                    cards.add(card)
                    group.append(item)
            try:
                answers = self.score([t for t, _, _ in group], [late for _, late, _ in group])
            except Exception as error:  # each caller gets it, as if it had scored alone
                for _, _, future in group:
                    if not future.done():
                        future.set_exception(error)
            else:
                for (_, _, future), answer in zip(group, answers, strict=True):
                    if not future.done():  # not if its caller went away
                        future.set_result(answer)
            waiting = later
