"""Session cost: exact (against rational arithmetic) and monotone in energy and time."""
from fractions import Fraction

from hypothesis import given, settings, strategies as st

from edge.core.tariff import session_cost, validate_tariff

PARKING = st.one_of(st.none(), st.fixed_dictionaries({
    "m_per_period": st.integers(0, 10 ** 6), "period_s": st.integers(60, 86400),
    "free_s": st.integers(0, 86400), "cap_m": st.one_of(st.none(), st.integers(0, 10 ** 7))}))
TARIFFS = st.fixed_dictionaries({"currency": st.just("EUR"), "energy_m_per_kwh": st.integers(0, 10 ** 6),
                                 "parking": PARKING, "monthly_base_m": st.integers(0, 10 ** 5)})
ENERGY = st.integers(0, 10 ** 7)
TIME = st.integers(0, 40 * 86400)


def _half_up(q):
    return int((q + Fraction(1, 2)) // 1)


@settings(max_examples=400, deadline=None)
@given(TARIFFS, ENERGY, TIME)
def test_cost_is_exact(tariff, energy_wh, plugged_s):
    t = validate_tariff(tariff)
    c = session_cost(t, energy_wh, plugged_s)
    assert c["energy_m"] == _half_up(Fraction(energy_wh * t["energy_m_per_kwh"], 1000))
    p = t["parking"]
    if p is None or plugged_s <= p["free_s"]:
        want = 0
    else:
        periods = -(-(plugged_s - p["free_s"]) // p["period_s"])
        want = periods * p["m_per_period"]
        if p["cap_m"] is not None:
            want = min(want, p["cap_m"])
    assert c["parking_m"] == want
    assert c["total_m"] == c["energy_m"] + c["parking_m"]
    assert all(type(v) is int for v in c.values())


@settings(max_examples=400, deadline=None)
@given(TARIFFS, ENERGY, ENERGY, TIME, TIME)
def test_cost_is_monotone(tariff, e1, e2, s1, s2):
    t = validate_tariff(tariff)
    lo_e, hi_e = min(e1, e2), max(e1, e2)
    lo_s, hi_s = min(s1, s2), max(s1, s2)
    a = session_cost(t, lo_e, lo_s)
    b = session_cost(t, hi_e, lo_s)
    c = session_cost(t, lo_e, hi_s)
    d = session_cost(t, hi_e, hi_s)
    assert a["energy_m"] <= b["energy_m"] and a["parking_m"] <= c["parking_m"]
    assert a["total_m"] <= b["total_m"] <= d["total_m"]
    assert a["total_m"] <= c["total_m"] <= d["total_m"]
