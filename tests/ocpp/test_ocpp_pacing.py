"""The start-up pacer: a few pieces of work per event-loop turn, first come first served."""
import asyncio
import logging

import pytest

from edge.ocpp_gateway.pacing import BURST_REPORT_AT, TurnPacer


class Turns:
    """Counts loop turns: a callback that schedules itself again runs once per turn."""

    def __init__(self) -> None:
        self.n = 0
        self._on = True
        asyncio.get_running_loop().call_soon(self._tick)

    def _tick(self) -> None:
        self.n += 1
        if self._on:
            asyncio.get_running_loop().call_soon(self._tick)

    def stop(self) -> None:
        self._on = False


async def test_at_most_per_turn_pieces_begin_in_one_turn_in_arrival_order():
    pacer = TurnPacer(3)
    turns = Turns()
    began: list[tuple[int, int]] = []   # (piece, turn it began in)

    async def piece(i: int) -> None:
        await pacer.turn()
        began.append((i, turns.n))

    await asyncio.gather(*(piece(i) for i in range(20)))
    turns.stop()
    assert [i for i, _ in began] == list(range(20))
    per_turn: dict[int, int] = {}
    for _, t in began:
        per_turn[t] = per_turn.get(t, 0) + 1
    assert max(per_turn.values()) == 3
    assert len(per_turn) == 7                      # 20 pieces, 3 a turn
    s = pacer.stats()
    assert s == {"per_turn": 3, "waiting": 0, "peak_waiting": 20, "granted": 20,
                 "busiest_turn": 3}


async def test_a_cancelled_waiter_gives_its_place_up():
    pacer = TurnPacer(1)
    order = []

    async def piece(i: int) -> None:
        await pacer.turn()
        order.append(i)

    tasks = [asyncio.ensure_future(piece(i)) for i in range(4)]
    await asyncio.sleep(0)
    tasks[1].cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert order == [0, 2, 3]
    assert pacer.granted == 3 and pacer.waiting == 0


async def test_other_work_runs_between_the_turns_of_a_long_queue():
    """What the pacer is for: a task that is not paced (the meter poll, the control
    step) waits at most one turn however long the queue of start-up work is."""
    pacer = TurnPacer(2)
    done = []

    async def piece(i: int) -> None:
        await pacer.turn()
        done.append(i)

    queue = [asyncio.ensure_future(piece(i)) for i in range(200)]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert len(done) <= 4           # three turns later, a few pieces have run
    assert pacer.waiting >= 196
    await asyncio.gather(*queue)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "4"])
def test_per_turn_must_be_a_whole_number_of_at_least_one(bad):
    with pytest.raises(ValueError, match="per_turn"):
        TurnPacer(bad)


async def test_a_burst_is_said_once_when_it_starts_and_once_when_it_is_over(caplog):
    pacer = TurnPacer(2)

    async def piece() -> None:
        await pacer.turn()

    caplog.set_level(logging.INFO, logger="edge.ocpp_gateway.pacing")
    await asyncio.gather(*(piece() for _ in range(BURST_REPORT_AT - 1)))
    assert not caplog.records                       # a short queue is no news
    await asyncio.gather(*(piece() for _ in range(3 * BURST_REPORT_AT)))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert lines[0].startswith("wallbox start-up: %d pieces of work queued" % BURST_REPORT_AT)
    assert "burst over after" in lines[1]
    # all queued in one turn before the first went: the burst counts every one of them
    assert "(%d pieces, at most %d waiting)" % (3 * BURST_REPORT_AT,
                                                3 * BURST_REPORT_AT) in lines[1]
