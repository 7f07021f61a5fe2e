"""Settings of the load management (config file part ``load_management:``).

Amps may be written as numbers (``ramp_step_a: 6``); they become deciamps with
round-half-up. Every field is checked before anything is built.
"""

from edge.core.checks import amps_to_da, need_dict, need_int, no_unknown_keys
from edge.core.errors import ValidationError

_DAY_S = 86400
_MAX_DA = 10000

# name: (default, kind) with kind "s" (seconds, int), "a" (amps -> deciamps)
_FIELDS = (
    ("meter_max_age_s", 10, "s"),
    ("failsafe_non_ev_a", None, "a3"),
    ("rotate_after_s", 900, "s"),
    ("phase_hold_s", 60, "s"),
    ("phase_up_margin_a", 1, "a"),
    ("raise_holdoff_s", 10, "s"),
    ("ramp_step_a", 6, "a"),
    ("min_change_a", 1, "a"),
    ("unused_headroom_a", 2, "a"),
    ("sample_wait_s", 60, "s"),
    ("small_raise_after_s", 300, "s"),
    ("non_ev_deadband_a", 1, "a"),
)


class AllocConfig:
    """Validated settings; attribute names carry their unit.

    meter_max_age_s      a grid reading older than this puts the site in fail-safe
    failsafe_non_ev_da   non-EV load assumed per phase in fail-safe (3-tuple);
                         None assumes the whole grid limit (EVs get nothing)
    rotate_after_s       paused sessions swap with charging ones after this (0: never)
    phase_hold_s         minimum time between two phase switches of a connector
    phase_up_margin_da   back to 3 phases only if min + this fits on 3 phases
    raise_holdoff_s      no raise sooner than this after the last change
    ramp_step_da         largest raise per step
    min_change_da        raises smaller than this are not sent (cuts always are)...
    small_raise_after_s  ...until the limit has stood this long (0: never): on a
                         site of 100 cars, 0.5 A each left unsent is 50 A unused
    non_ev_deadband_da   the non-EV estimate goes down only when the measured load is
                         lower by this or more (it goes up at once): meter noise must
                         not move every car's share up and down by a deciamp
    unused_headroom_da   an EV drawing less than its limit by more than this is
                         given its draw + this; the rest goes to others
    sample_wait_s        how long after a change (plus raise_holdoff_s) a wallbox may
                         take to send the sample that shows its car followed; until
                         then a rise of the grid within the change is taken for the
                         car (alloc_capacity: "The non-EV estimate")
    """

    def __init__(self, meter_max_age_s=10, failsafe_non_ev_da=None, rotate_after_s=900,
                 phase_hold_s=60, phase_up_margin_da=10, raise_holdoff_s=10, ramp_step_da=60,
                 min_change_da=10, unused_headroom_da=20, sample_wait_s=60,
                 small_raise_after_s=300, non_ev_deadband_da=10):
        self.meter_max_age_s = _int(meter_max_age_s, "meter_max_age_s", 1, _DAY_S)
        if failsafe_non_ev_da is not None:
            if isinstance(failsafe_non_ev_da, int) and not isinstance(failsafe_non_ev_da, bool):
                failsafe_non_ev_da = (failsafe_non_ev_da,) * 3
            if not isinstance(failsafe_non_ev_da, (list, tuple)) or len(failsafe_non_ev_da) != 3:
                raise ValidationError("failsafe_non_ev_da", failsafe_non_ev_da,
                                      "must be deciamps: one number or 3 per site phase")
            for p in range(3):
                _int(failsafe_non_ev_da[p], "failsafe_non_ev_da[%d]" % p, 0, _MAX_DA)
            failsafe_non_ev_da = tuple(failsafe_non_ev_da)
        self.failsafe_non_ev_da = failsafe_non_ev_da
        self.rotate_after_s = _int(rotate_after_s, "rotate_after_s", 0, 7 * _DAY_S)
        self.phase_hold_s = _int(phase_hold_s, "phase_hold_s", 0, _DAY_S)
        self.phase_up_margin_da = _int(phase_up_margin_da, "phase_up_margin_da", 0, _MAX_DA)
        self.raise_holdoff_s = _int(raise_holdoff_s, "raise_holdoff_s", 0, _DAY_S)
        self.ramp_step_da = _int(ramp_step_da, "ramp_step_da", 1, _MAX_DA)
        self.min_change_da = _int(min_change_da, "min_change_da", 0, _MAX_DA)
        self.unused_headroom_da = _int(unused_headroom_da, "unused_headroom_da", 1, _MAX_DA)
        self.sample_wait_s = _int(sample_wait_s, "sample_wait_s", 0, _DAY_S)
        self.small_raise_after_s = _int(small_raise_after_s, "small_raise_after_s", 0, _DAY_S)
        self.non_ev_deadband_da = _int(non_ev_deadband_da, "non_ev_deadband_da", 0, _MAX_DA)

    @classmethod
    def from_dict(cls, d, field="load_management"):
        if d is None:
            return cls()
        need_dict(d, field)
        no_unknown_keys(d, field, [f[0] for f in _FIELDS])
        kw = {}
        for name, default, kind in _FIELDS:
            where = field + "." + name
            value = d.get(name, default)
            if kind == "s":
                kw[name] = need_int(value, where, 0, 7 * _DAY_S)
            elif kind == "a":
                kw[name[:-2] + "_da"] = amps_to_da(value, where, 0, _MAX_DA)
            elif value is None:
                kw[name[:-2] + "_da"] = None
            elif isinstance(value, (list, tuple)):
                if len(value) != 3:
                    raise ValidationError(where, value, "must be one number of amperes or 3 (L1, L2, L3)")
                kw[name[:-2] + "_da"] = tuple(amps_to_da(value[p], "%s[%d]" % (where, p), 0, _MAX_DA)
                                              for p in range(3))
            else:
                kw[name[:-2] + "_da"] = amps_to_da(value, where, 0, _MAX_DA)
        try:
            return cls(**kw)
        except ValidationError as e:
            raise ValidationError(field + "." + _config_name(e.field), e.value, e.message)


def _config_name(attr):
    # Report the name the config file uses, not the internal attribute.
    for name, _, kind in _FIELDS:
        if kind != "s" and attr.split("[")[0] == name[:-2] + "_da":
            return name + attr[len(name) - 2 + 3:]
    return attr


def _int(value, field, lo, hi):
    return need_int(value, field, lo, hi)
