from edge.core.errors import ValidationError
from edge.core.tariff import copy_tariff, session_cost, validate_tariff

PARK = {"m_per_period": 500, "period_s": 3600, "free_s": 7200, "cap_m": 2000}
TARIFF = {"currency": "EUR", "energy_m_per_kwh": 350, "parking": PARK, "monthly_base_m": 9900}


def _refused(fn, field):
    try:
        fn()
    except ValidationError as e:
        assert e.field == field, (e.field, field, str(e))
        return e
    raise AssertionError("accepted, expected a refusal at " + field)


def test_energy_rounds_half_up_to_milli_units():
    t = validate_tariff({"currency": "EUR", "energy_m_per_kwh": 350})
    assert session_cost(t, 0, 0)["energy_m"] == 0
    assert session_cost(t, 1, 0)["energy_m"] == 0        # 0.35 m
    assert session_cost(t, 2, 0)["energy_m"] == 1        # 0.70 m
    assert session_cost(t, 10, 0)["energy_m"] == 4       # 3.5 m: half rounds up
    assert session_cost(t, 12345, 0)["energy_m"] == 4321  # 4320.75 m
    assert session_cost(t, 20000, 0)["energy_m"] == 7000  # 20 kWh at 0.35 EUR = 7 EUR exactly


def test_parking_per_started_period_after_free_time_with_cap():
    t = validate_tariff(TARIFF)
    cost = lambda s: session_cost(t, 0, s)["parking_m"]
    assert cost(0) == 0
    assert cost(7200) == 0             # free time exactly used up
    assert cost(7201) == 500           # first second of a period is a whole period
    assert cost(7200 + 3600) == 500
    assert cost(7200 + 3601) == 1000
    assert cost(7200 + 4 * 3600) == 2000
    assert cost(7200 + 4 * 3600 + 1) == 2000   # capped
    assert cost(30 * 86400) == 2000


def test_total_is_sum_and_monthly_fee_is_not_per_session():
    t = validate_tariff(TARIFF)
    c = session_cost(t, 20000, 7201)
    assert c == {"energy_m": 7000, "parking_m": 500, "total_m": 7500}


def test_no_tariff_costs_nothing_and_no_parking_means_zero():
    assert session_cost(None, 50000, 99999) == {"energy_m": 0, "parking_m": 0, "total_m": 0}
    t = validate_tariff({"currency": "CHF", "energy_m_per_kwh": 500, "parking": None})
    assert session_cost(t, 1000, 10 ** 6) == {"energy_m": 500, "parking_m": 0, "total_m": 500}


def test_large_values_stay_exact():
    t = validate_tariff({"currency": "EUR", "energy_m_per_kwh": 99999999})
    # 10 MWh: Python ints do not overflow, MicroPython uses big ints as well.
    assert session_cost(t, 10 ** 7, 0)["energy_m"] == 999999990000


def test_defaults_filled_and_copy_is_independent():
    t = validate_tariff({"currency": "EUR", "energy_m_per_kwh": 1,
                         "parking": {"m_per_period": 1, "period_s": 60}})
    assert t["monthly_base_m"] == 0
    assert t["parking"] == {"m_per_period": 1, "period_s": 60, "free_s": 0, "cap_m": None}
    c = copy_tariff(t)
    c["parking"]["m_per_period"] = 999
    assert t["parking"]["m_per_period"] == 1
    assert copy_tariff(None) is None


def test_bad_tariffs_name_the_field():
    cases = [
        ({"currency": "EUR", "energy_m_per_kwh": -1}, "tariff.energy_m_per_kwh"),
        ({"currency": "EUR", "energy_m_per_kwh": 3.5}, "tariff.energy_m_per_kwh"),
        ({"currency": "EUR", "energy_m_per_kwh": True}, "tariff.energy_m_per_kwh"),
        ({"currency": "EUR"}, "tariff.energy_m_per_kwh"),
        ({"currency": "eur", "energy_m_per_kwh": 1}, "tariff.currency"),
        ({"currency": "EURO", "energy_m_per_kwh": 1}, "tariff.currency"),
        ({"currency": "\u00c4UR", "energy_m_per_kwh": 1}, "tariff.currency"),
        ({"currency": 978, "energy_m_per_kwh": 1}, "tariff.currency"),
        ({"currency": "EUR", "energy_m_per_kwh": 1, "monthly_base_m": -5}, "tariff.monthly_base_m"),
        ({"currency": "EUR", "energy_m_per_kwh": 1, "parking": {"m_per_period": 1, "period_s": 0}},
         "tariff.parking.period_s"),
        ({"currency": "EUR", "energy_m_per_kwh": 1, "parking": {"m_per_period": -1, "period_s": 600}},
         "tariff.parking.m_per_period"),
        ({"currency": "EUR", "energy_m_per_kwh": 1,
          "parking": {"m_per_period": 1, "period_s": 600, "cap_m": -1}}, "tariff.parking.cap_m"),
        ({"currency": "EUR", "energy_m_per_kwh": 1, "parking": "yes"}, "tariff.parking"),
        ({"currency": "EUR", "energy_m_per_kwh": 1, "vat": 19}, "tariff.vat"),
        ("350", "tariff"),
    ]
    for t, field in cases:
        e = _refused(lambda: validate_tariff(t), field)
        assert str(e).startswith(field + ": ")


def test_cost_refuses_negative_inputs():
    t = validate_tariff(TARIFF)
    _refused(lambda: session_cost(t, -1, 0), "energy_wh")
    _refused(lambda: session_cost(t, 0, -1), "plugged_s")
    _refused(lambda: session_cost(t, 1.5, 0), "energy_wh")


def test_worked_example_of_docs_domain_md():
    t = validate_tariff({"currency": "EUR", "energy_m_per_kwh": 350,
                         "parking": {"m_per_period": 500, "period_s": 3600, "free_s": 7200, "cap_m": 5000},
                         "monthly_base_m": 0})
    assert session_cost(t, 12345, 3 * 3600 + 5 * 60) == {"energy_m": 4321, "parking_m": 1000, "total_m": 5321}
