"""Tariffs and the cost of a session, in integers.

Units: money in milli-units of the tariff's currency (``_m``; 1 EUR = 1000 m),
energy in Wh, time in seconds. MicroPython floats are single precision on many
boards, so no float is ever used for money.

Tariff shape (validated by ``validate_tariff``)::

    {"currency": "EUR", "energy_m_per_kwh": 350,
     "parking": {"m_per_period": 500, "period_s": 3600, "free_s": 7200, "cap_m": 5000} | None,
     "monthly_base_m": 0}

Rounding rule (also in docs/domain.md):
  - energy_m = energy_wh * energy_m_per_kwh / 1000, rounded half up to a whole
    milli-unit (e.g. 1 Wh at 350 m/kWh = 0.35 m -> 0 m; 3 Wh -> 1.05 m -> 1 m;
    10 Wh at 350 -> 3.5 m -> 4 m);
  - parking: plugged-in seconds beyond ``free_s`` are billed per STARTED period
    (1 s into a period is a whole period), then capped at ``cap_m`` if set;
  - total_m = energy_m + parking_m. Both parts are whole milli-units, so the
    total is exact; rounding to cents for an invoice is the billing system's job.
  - the monthly base fee is billed per month by the cloud, never per session.
Both parts are non-decreasing in energy and in plugged-in time.
"""

from edge.core.checks import need_dict, need_int, need_opt_int, no_unknown_keys
from edge.core.errors import ValidationError

MAX_PRICE_M = 100000000          # 100,000 currency units: a bound against typos and overflow
_TARIFF_KEYS = ("currency", "energy_m_per_kwh", "parking", "monthly_base_m")
_PARKING_KEYS = ("m_per_period", "period_s", "free_s", "cap_m")


def validate_tariff(t, field="tariff"):
    """Validate a tariff; return a new, complete dict (defaults filled in)."""
    need_dict(t, field)
    no_unknown_keys(t, field, _TARIFF_KEYS)
    currency = t.get("currency")
    if not (isinstance(currency, str) and len(currency) == 3 and
            "A" <= currency[0] <= "Z" and "A" <= currency[1] <= "Z" and "A" <= currency[2] <= "Z"):
        raise ValidationError(field + ".currency", currency, "must be a 3-letter ISO 4217 code such as EUR")
    energy = need_int(t.get("energy_m_per_kwh"), field + ".energy_m_per_kwh", 0, MAX_PRICE_M)
    monthly = need_int(t.get("monthly_base_m", 0), field + ".monthly_base_m", 0, MAX_PRICE_M)
    parking = t.get("parking")
    if parking is not None:
        pf = field + ".parking"
        need_dict(parking, pf)
        no_unknown_keys(parking, pf, _PARKING_KEYS)
        parking = {
            "m_per_period": need_int(parking.get("m_per_period"), pf + ".m_per_period", 0, MAX_PRICE_M),
            "period_s": need_int(parking.get("period_s"), pf + ".period_s", 60, 86400),
            "free_s": need_int(parking.get("free_s", 0), pf + ".free_s", 0, 31 * 86400),
            "cap_m": need_opt_int(parking.get("cap_m"), pf + ".cap_m", 0, MAX_PRICE_M),
        }
    return {"currency": currency, "energy_m_per_kwh": energy, "parking": parking,
            "monthly_base_m": monthly}


def copy_tariff(t):
    """A private copy for a session's tariff snapshot (later changes to the group never reach it)."""
    if t is None:
        return None
    p = t["parking"]
    return {"currency": t["currency"], "energy_m_per_kwh": t["energy_m_per_kwh"],
            "parking": None if p is None else dict(p), "monthly_base_m": t["monthly_base_m"]}


def energy_cost_m(energy_m_per_kwh, energy_wh):
    # Half up: add half the divisor before the floor division.
    return (energy_wh * energy_m_per_kwh + 500) // 1000


def parking_cost_m(parking, plugged_s):
    if parking is None:
        return 0
    billable = plugged_s - parking["free_s"]
    if billable <= 0:
        return 0
    period = parking["period_s"]
    started_periods = (billable + period - 1) // period
    cost = started_periods * parking["m_per_period"]
    cap = parking["cap_m"]
    if cap is not None and cost > cap:
        cost = cap
    return cost


def session_cost(tariff, energy_wh, plugged_s):
    """Cost of one session from its tariff snapshot -> {"energy_m", "parking_m", "total_m"}.

    ``tariff`` None (a group without tariff) costs nothing. Negative or
    non-integer inputs are refused: they mean a meter or clock went wrong and
    must not silently become a refund.
    """
    need_int(energy_wh, "energy_wh", 0)
    need_int(plugged_s, "plugged_s", 0)
    if tariff is None:
        return {"energy_m": 0, "parking_m": 0, "total_m": 0}
    energy_m = energy_cost_m(tariff["energy_m_per_kwh"], energy_wh)
    parking_m = parking_cost_m(tariff.get("parking"), plugged_s)
    return {"energy_m": energy_m, "parking_m": parking_m, "total_m": energy_m + parking_m}
