"""Charging profiles as a wallbox keeps and evaluates them.

Both OCPP versions are parsed into one neutral `Profile`; evaluation follows the
stacking rules common to 1.6 and 2.0.1: within a purpose the highest stack
level with an active period wins, a TxProfile overrides a TxDefaultProfile,
and the station-wide maximum caps the sum of all connectors.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from .clock import parse_iso

VOLTS = 230.0  # per phase, to turn a power schedule into amps
MAX = "max"            # ChargePointMaxProfile / ChargingStationMaxProfile
TX_DEFAULT = "txdefault"
TX = "tx"
EXTERNAL = "external"  # ChargingStationExternalConstraints (2.0.1), acts as a cap

PURPOSES_16 = {"ChargePointMaxProfile": MAX, "TxDefaultProfile": TX_DEFAULT, "TxProfile": TX}
PURPOSES_201 = {"ChargingStationMaxProfile": MAX, "TxDefaultProfile": TX_DEFAULT,
                "TxProfile": TX, "ChargingStationExternalConstraints": EXTERNAL}
KINDS = ("Absolute", "Recurring", "Relative")
RECURRENCY_S = {"Daily": 86400, "Weekly": 7 * 86400}


class ProfileError(ValueError):
    """A profile the wallbox cannot accept; `str()` names the field and value."""

    def __init__(self, field_name: str, value, message: str) -> None:
        super().__init__("%s: %s (got %r)" % (field_name, message, value))
        self.field = field_name
        self.value = value


@dataclass
class Period:
    start_s: int
    limit: float
    phases: int | None = None


@dataclass
class Profile:
    id: int
    connector_id: int          # 0 = the whole station
    purpose: str               # MAX, TX_DEFAULT, TX, EXTERNAL
    stack_level: int
    kind: str
    unit: str                  # "A" or "W"
    periods: list[Period]
    recurrency: str | None = None
    valid_from_s: float | None = None
    valid_to_s: float | None = None
    start_s: float | None = None
    duration_s: int | None = None
    transaction_id: str | None = None
    installed_s: float = 0.0
    raw: dict = field(default_factory=dict, repr=False)


def _int(d: dict, key: str, path: str, minimum: int | None = None, required: bool = True):
    value = d.get(key)
    if value is None:
        if required:
            raise ProfileError(path + key, None, "is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProfileError(path + key, value, "must be an integer")
    if minimum is not None and value < minimum:
        raise ProfileError(path + key, value, "must be >= %d" % minimum)
    return value


def _time(d: dict, key: str, path: str):
    value = d.get(key)
    if value is None:
        return None
    try:
        return parse_iso(value)
    except ValueError:
        raise ProfileError(path + key, value, "must be an ISO 8601 date-time") from None


def _schedule(s: dict, path: str, into: dict, max_periods: int) -> None:
    if not isinstance(s, dict):
        raise ProfileError(path.rstrip("."), s, "must be an object")
    unit = s.get("charging_rate_unit")
    if unit not in ("A", "W"):
        raise ProfileError(path + "charging_rate_unit", unit, "must be 'A' or 'W'")
    raw_periods = s.get("charging_schedule_period")
    if not isinstance(raw_periods, list) or not raw_periods:
        raise ProfileError(path + "charging_schedule_period", raw_periods,
                           "must be a non-empty list")
    if len(raw_periods) > max_periods:
        raise ProfileError(path + "charging_schedule_period", len(raw_periods),
                           "has more periods than the %d this wallbox keeps" % max_periods)
    periods = []
    for i, p in enumerate(raw_periods):
        ppath = "%scharging_schedule_period[%d]." % (path, i)
        if not isinstance(p, dict):
            raise ProfileError(ppath.rstrip("."), p, "must be an object")
        start = _int(p, "start_period", ppath, minimum=0)
        limit = p.get("limit")
        # The ocpp library hands 1.6 decimals over as Decimal.
        if isinstance(limit, bool) or not isinstance(limit, (int, float, Decimal)) or limit < 0:
            raise ProfileError(ppath + "limit", limit, "must be a number >= 0")
        phases = p.get("number_phases")
        if phases is not None and phases not in (1, 2, 3):
            raise ProfileError(ppath + "number_phases", phases, "must be 1, 2 or 3")
        if periods and start <= periods[-1].start_s:
            raise ProfileError(ppath + "start_period", start, "must increase")
        periods.append(Period(start, float(limit), phases))
    if periods[0].start_s != 0:
        raise ProfileError(path + "charging_schedule_period[0].start_period",
                           periods[0].start_s, "must be 0")
    into["unit"] = unit
    into["periods"] = periods
    into["duration_s"] = _int(s, "duration", path, minimum=0, required=False)
    into["start_s"] = _time(s, "start_schedule", path)


def _common(p: dict, purposes: dict, connector_id: int, now_s: float, id_key: str,
            max_periods: int) -> dict:
    if not isinstance(p, dict):
        raise ProfileError("charging_profile", p, "must be an object")
    purpose = purposes.get(p.get("charging_profile_purpose"))
    if purpose is None:
        raise ProfileError("charging_profile_purpose", p.get("charging_profile_purpose"),
                           "must be one of " + ", ".join(sorted(purposes)))
    kind = p.get("charging_profile_kind")
    if kind not in KINDS:
        raise ProfileError("charging_profile_kind", kind, "must be one of " + ", ".join(KINDS))
    recurrency = p.get("recurrency_kind")
    if kind == "Recurring" and recurrency not in RECURRENCY_S:
        raise ProfileError("recurrency_kind", recurrency, "must be Daily or Weekly for Recurring")
    out = dict(id=_int(p, id_key, ""), connector_id=connector_id, purpose=purpose,
               stack_level=_int(p, "stack_level", "", minimum=0), kind=kind,
               recurrency=recurrency if kind == "Recurring" else None,
               valid_from_s=_time(p, "valid_from", ""), valid_to_s=_time(p, "valid_to", ""),
               installed_s=now_s, raw=p)
    tx = p.get("transaction_id")
    out["transaction_id"] = None if tx is None else str(tx)
    if purpose == MAX and connector_id != 0:
        raise ProfileError("connector_id", connector_id, "a station maximum profile needs connector 0")
    if purpose == TX and connector_id == 0:
        raise ProfileError("connector_id", connector_id, "a TxProfile needs a connector")
    return out


def parse_v16(connector_id: int, p: dict, now_s: float, max_periods: int = 24) -> Profile:
    out = _common(p, PURPOSES_16, connector_id, now_s, "charging_profile_id", max_periods)
    _schedule(p.get("charging_schedule"), "charging_schedule.", out, max_periods)
    if out["kind"] == "Recurring" and out["start_s"] is None:
        raise ProfileError("charging_schedule.start_schedule", None, "is required for Recurring")
    return Profile(**{k: v for k, v in out.items()})


def parse_v201(evse_id: int, p: dict, now_s: float, max_periods: int = 24) -> Profile:
    out = _common(p, PURPOSES_201, evse_id, now_s, "id", max_periods)
    schedules = p.get("charging_schedule")
    if not isinstance(schedules, list) or not schedules:
        raise ProfileError("charging_schedule", schedules, "must be a non-empty list")
    # A station with one meter per EVSE uses the first schedule; more than one is
    # only meaningful for ISO 15118 offers, which this wallbox does not make.
    _schedule(schedules[0], "charging_schedule[0].", out, max_periods)
    if out["kind"] == "Recurring" and out["start_s"] is None:
        raise ProfileError("charging_schedule[0].start_schedule", None, "is required for Recurring")
    return Profile(**out)


def _start(profile: Profile, tx_started_s: float | None) -> float:
    if profile.kind == "Relative":
        return tx_started_s if tx_started_s is not None else profile.installed_s
    if profile.kind == "Recurring":
        return profile.start_s
    return profile.start_s if profile.start_s is not None else profile.installed_s


def next_change(profile: Profile, now_s: float, tx_started_s: float | None) -> float | None:
    """The next instant after `now_s` at which `profile` may give another limit."""
    out = []
    for edge in (profile.valid_from_s, profile.valid_to_s):
        if edge is not None and edge > now_s:
            out.append(edge)
    start = _start(profile, tx_started_s)
    if profile.kind == "Recurring":
        cycle = RECURRENCY_S[profile.recurrency]
        start += ((now_s - start) // cycle) * cycle if now_s > start else 0
        ends = [start + cycle]
    else:
        ends = []
    edges = [start + p.start_s for p in profile.periods] + ends
    if profile.duration_s is not None:
        edges.append(start + profile.duration_s)
    out += [e for e in edges if e > now_s]
    return min(out) if out else None


def period_at(profile: Profile, now_s: float, tx_started_s: float | None) -> Period | None:
    """The period of `profile` in force at `now_s`, or None."""
    if profile.valid_from_s is not None and now_s < profile.valid_from_s:
        return None
    if profile.valid_to_s is not None and now_s >= profile.valid_to_s:
        return None
    start = _start(profile, tx_started_s)
    elapsed = now_s - start
    if elapsed < 0:
        return None
    if profile.kind == "Recurring":
        elapsed %= RECURRENCY_S[profile.recurrency]
    if profile.duration_s is not None and elapsed >= profile.duration_s:
        return None
    chosen = None
    for period in profile.periods:
        if period.start_s <= elapsed:
            chosen = period
        else:
            break
    return chosen


def to_amps(profile: Profile, period: Period, phases: int) -> float:
    if profile.unit == "A":
        return period.limit
    used = period.phases or phases
    return period.limit / (VOLTS * used)


class ProfileStore:
    """The profiles one wallbox has installed."""

    def __init__(self, max_installed: int = 16) -> None:
        self.max_installed = max_installed
        self._profiles: dict[int, Profile] = {}

    def __len__(self) -> int:
        return len(self._profiles)

    def all(self) -> list[Profile]:
        return list(self._profiles.values())

    def install(self, profile: Profile) -> None:
        # Same purpose and stack level on the same connector replaces (OCPP rule).
        for old in list(self._profiles.values()):
            if (old.connector_id == profile.connector_id and old.purpose == profile.purpose
                    and old.stack_level == profile.stack_level):
                del self._profiles[old.id]
        if profile.id not in self._profiles and len(self._profiles) >= self.max_installed:
            raise ProfileError("charging_profile", profile.id,
                               "no room: %d profiles installed" % len(self._profiles))
        self._profiles[profile.id] = profile

    def clear(self, profile_id=None, connector_id=None, purpose=None, stack_level=None) -> int:
        removed = 0
        for p in list(self._profiles.values()):
            if profile_id is not None and p.id != profile_id:
                continue
            if connector_id is not None and p.connector_id != connector_id:
                continue
            if purpose is not None and p.purpose != purpose:
                continue
            if stack_level is not None and p.stack_level != stack_level:
                continue
            del self._profiles[p.id]
            removed += 1
        return removed

    def drop_tx_profiles(self, connector_id: int) -> None:
        """A TxProfile ends with its transaction."""
        for p in list(self._profiles.values()):
            if p.purpose == TX and p.connector_id == connector_id:
                del self._profiles[p.id]

    def _best(self, candidates, now_s, tx_started_s, phases):
        best = None
        for p in sorted(candidates, key=lambda q: (q.stack_level, q.connector_id), reverse=True):
            period = period_at(p, now_s, tx_started_s)
            if period is not None:
                best = (to_amps(p, period, phases), period.phases)
                break
        return best

    def connector_limit(self, connector_id: int, now_s: float, tx, phases: int):
        """(amps per phase, phases or None) for one connector, or None for no limit.

        `tx` is the running transaction (with `server_id`, `started_s`) or None.
        """
        tx_started_s = tx.started_s if tx is not None else None
        if tx is not None:
            # A 1.6 transaction has no id until the server answers; its TxProfile
            # (e.g. sent with a remote start) already applies.
            txs = [p for p in self._profiles.values() if p.purpose == TX
                   and p.connector_id == connector_id
                   and (p.transaction_id is None or tx.server_id is None
                        or p.transaction_id == str(tx.server_id))]
            found = self._best(txs, now_s, tx_started_s, phases)
            if found is not None:
                return found
        defaults = [p for p in self._profiles.values() if p.purpose == TX_DEFAULT
                    and p.connector_id in (0, connector_id)]
        return self._best(defaults, now_s, tx_started_s, phases)

    def next_change(self, now_s: float, tx_starts: dict) -> float | None:
        """The next instant any installed profile may change a limit.

        `tx_starts`: {connector_id: start of its running transaction}.
        """
        out = []
        for p in self._profiles.values():
            if p.kind == "Relative":
                starts = [t for c, t in tx_starts.items() if p.connector_id in (0, c)]
            else:
                starts = [None]
            for started in starts:
                t = next_change(p, now_s, started)
                if t is not None:
                    out.append(t)
        return min(out) if out else None

    def station_limit(self, now_s: float, phases: int):
        """The station-wide cap in amps per phase, or None."""
        caps = []
        for purpose in (MAX, EXTERNAL):
            found = self._best([p for p in self._profiles.values() if p.purpose == purpose],
                               now_s, None, phases)
            if found is not None:
                caps.append(found[0])
        return min(caps) if caps else None
