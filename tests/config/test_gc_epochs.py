"""edge/gc_epochs.py: what is frozen is alive; garbage, also a frozen object that died
in a reference cycle, is freed at the next epoch."""
import asyncio
import gc
import weakref

from edge import gc_epochs


class Node:
    pass


def cycle():
    a, b = Node(), Node()
    a.other, b.other = b, a
    return a


def test_refreeze_freezes_the_living_and_frees_frozen_cycles():
    try:
        garbage = cycle()
        dead = weakref.ref(garbage)
        del garbage
        kept = cycle()
        gc_epochs.refreeze()
        assert dead() is None                 # collected first, never frozen
        assert gc.get_freeze_count() > 0
        alive = weakref.ref(kept)
        del kept                              # frozen, now garbage in a cycle
        gc.collect()
        assert alive() is not None            # out of the collector's sight ...
        gc_epochs.refreeze()
        assert alive() is None                # ... until the next epoch
    finally:
        gc.unfreeze()


async def test_epochs_wait_for_the_site_then_repeat(monkeypatch):
    calls = []
    monkeypatch.setattr(gc_epochs, "refreeze", lambda: calls.append(1) or 0.0)
    up = [False]
    task = asyncio.ensure_future(gc_epochs.run(lambda: up[0], settle_by_s=60, every_s=0.2,
                                               check_s=0.01))
    try:
        await asyncio.sleep(0.1)
        assert calls == []                    # the site is not up yet
        up[0] = True
        for _ in range(200):
            await asyncio.sleep(0.01)
            if len(calls) >= 2:
                break
        assert len(calls) >= 2                # once when up, then every epoch
    finally:
        task.cancel()
