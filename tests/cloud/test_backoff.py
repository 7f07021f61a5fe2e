"""Backoff: growth, cap, jitter bounds, and the reset only after a stable connection."""
import pytest

from edge.cloud.backoff import Backoff


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_delays_double_until_the_cap_and_stay_within_the_upper_half():
    for r in (0.0, 0.5, 0.999999):
        b = Backoff(base_s=1, cap_s=20, rng=lambda: r)
        delays = [b.next_delay() for _ in range(8)]
        ceilings = [1, 2, 4, 8, 16, 20, 20, 20]
        for delay, ceiling in zip(delays, ceilings):
            assert ceiling / 2 <= delay <= ceiling
            assert delay == pytest.approx(ceiling / 2 + r * ceiling / 2)


def test_jitter_spreads_a_fleet():
    import random
    rng = random.Random(7)
    sites = [Backoff(base_s=1, cap_s=60, rng=rng.random) for _ in range(50)]
    for b in sites:
        for _ in range(4):
            b.next_delay()
    fifth = sorted(b.next_delay() for b in sites)
    # 50 sites on their 5th retry: ceiling 16 s; all distinct and spread over [8, 16].
    assert len(set(fifth)) == 50
    assert fifth[0] >= 8 and fifth[-1] <= 16
    assert fifth[-1] - fifth[0] > 4


def test_many_failures_do_not_overflow():
    b = Backoff(base_s=0.5, cap_s=30, rng=lambda: 1.0)
    for _ in range(5000):
        delay = b.next_delay()
    assert delay == 30


def test_short_lived_connection_keeps_the_backoff_growing():
    clock = FakeClock()
    b = Backoff(base_s=1, cap_s=60, stable_s=30, rng=lambda: 1.0, clock=clock)
    b.next_delay(), b.next_delay(), b.next_delay()
    b.connected()
    clock.now += 2          # the broker drops us after 2 s: not stable
    b.disconnected()
    assert b.next_delay() == 8


def test_stable_connection_resets_the_backoff():
    clock = FakeClock()
    b = Backoff(base_s=1, cap_s=60, stable_s=30, rng=lambda: 1.0, clock=clock)
    for _ in range(6):
        b.next_delay()
    b.connected()
    clock.now += 31
    b.disconnected()
    assert b.next_delay() == 1


@pytest.mark.parametrize("kwargs", [dict(base_s=0), dict(base_s=2, cap_s=1), dict(factor=0.5)])
def test_nonsense_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        Backoff(**kwargs)


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(base=st.floats(0.01, 10), spread=st.floats(1, 100), factor=st.floats(1, 4),
       draws=st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=60))
def test_every_delay_lies_in_the_upper_half_of_a_growing_capped_ceiling(base, spread, factor, draws):
    cap = base * spread
    it = iter(draws)
    b = Backoff(base_s=base, cap_s=cap, factor=factor, rng=lambda: next(it))
    previous_ceiling = 0.0
    for _ in draws:
        ceiling = b.ceiling()
        delay = b.next_delay()
        assert base <= ceiling <= cap * (1 + 1e-12)
        assert ceiling >= previous_ceiling
        assert ceiling / 2 <= delay <= ceiling
        previous_ceiling = ceiling
