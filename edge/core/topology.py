"""The site from configuration: site -> charging groups -> stations -> connectors.

``Site.from_dict`` validates the whole ``site:`` part of the config before it
builds anything, so a wrong file yields one ValidationError naming the field and
the value, and never a half-built site.

Currents are stored in integer deciamps (``_da``). Limits that a config leaves
out mean "no extra limit at this level" and are filled with the sum of what lies
below, so the allocation always sees integers:
  - a station without ``max_current_a`` gets the sum of its connectors' maxima;
  - a charging group without ``max_current_a`` gets the grid limit.
"""

from edge.core.checks import (
    amps_to_da, is_ascii_digit, is_ascii_letter, need_bool, need_choice, need_dict, need_id, need_int, need_list,
    need_opt_int, need_str, no_unknown_keys,
)
from edge.core.errors import ValidationError
from edge.core.tzrule import parse_tz

OFFLINE_POLICIES = ("deny", "accept")
PHASE_NAMES = ("L1", "L2", "L3")
# Rotations of the site phases a 3-phase connector may be wired to (phase 1 first).
ROTATIONS = {"L1L2L3": (0, 1, 2), "L2L3L1": (1, 2, 0), "L3L1L2": (2, 0, 1)}
MAX_STATION_ID_LEN = 48   # OCPP 2.0.1 identity limit; 1.6 identities are shorter
MAX_CURRENT_DA = 10000    # 1000 A: anything above is a typo, not a site

_SITE_KEYS = ("site_id", "timezone", "grid", "offline_unknown_tokens", "charging_groups")
_GRID_KEYS = ("max_current_a", "max_power_w", "safety_margin_a")
_GROUP_KEYS = ("id", "name", "max_current_a", "stations")
_STATION_KEYS = ("id", "max_current_a", "connectors")
_CONNECTOR_KEYS = ("id", "phases", "wiring", "min_current_a", "max_current_a", "can_switch_phases")


class Connector:
    __slots__ = ("station_id", "id", "phases", "wiring", "min_da", "max_da", "can_switch_phases")

    def __init__(self, station_id, id, phases, wiring, min_da, max_da, can_switch_phases=False):
        self.station_id = station_id
        self.id = id
        self.phases = phases
        self.wiring = wiring          # tuple of site phase indexes, L1 = 0
        self.min_da = min_da
        self.max_da = max_da
        self.can_switch_phases = can_switch_phases

    @property
    def key(self):
        return (self.station_id, self.id)

    def __repr__(self):
        return "Connector(%r, %r, phases=%d, wiring=%r, %d..%d dA)" % (
            self.station_id, self.id, self.phases, self.wiring, self.min_da, self.max_da)


class Station:
    __slots__ = ("id", "max_da", "connectors", "group_id")

    def __init__(self, id, max_da, connectors, group_id):
        self.id = id
        self.max_da = max_da
        self.connectors = connectors  # tuple of Connector, config order
        self.group_id = group_id

    def connector(self, connector_id):
        if type(connector_id) is not int:   # True == 1 in Python: a bool is no connector id
            return None
        for c in self.connectors:
            if c.id == connector_id:
                return c
        return None

    def __repr__(self):
        return "Station(%r, group=%r, %d connectors)" % (self.id, self.group_id, len(self.connectors))


class ChargingGroup:
    __slots__ = ("id", "name", "max_da", "stations")

    def __init__(self, id, name, max_da, stations):
        self.id = id
        self.name = name
        self.max_da = max_da
        self.stations = stations      # tuple of Station, config order

    def __repr__(self):
        return "ChargingGroup(%r, %d stations)" % (self.id, len(self.stations))


class Site:
    def __init__(self, site_id, tz, grid_max_da, grid_max_power_w, margin_da,
                 offline_policy, charging_groups):
        self.site_id = site_id
        self.tz = tz                  # TzRule
        self.grid_max_da = grid_max_da
        self.grid_max_power_w = grid_max_power_w
        self.margin_da = margin_da
        self.offline_policy = offline_policy
        self.charging_groups = charging_groups  # tuple of ChargingGroup
        self._stations = {}
        self._connectors = []
        self._groups = {}
        for g in charging_groups:
            self._groups[g.id] = g
            for s in g.stations:
                self._stations[s.id] = s
                self._connectors.extend(s.connectors)

    @classmethod
    def from_dict(cls, d):
        return _build_site(d)

    # Look-ups take ids straight from wallboxes and payloads: anything that is not
    # an id of this site (even an unhashable list) is simply unknown.
    def station(self, station_id):
        return self._stations.get(station_id) if type(station_id) is str else None

    def connector(self, station_id, connector_id):
        s = self.station(station_id)
        return s.connector(connector_id) if s is not None else None

    def connectors(self):
        return list(self._connectors)

    def stations(self):
        return list(self._stations.values())

    def charging_group(self, group_id):
        return self._groups.get(group_id) if type(group_id) is str else None

    def group_of(self, station_id):
        s = self.station(station_id)
        return self._groups[s.group_id] if s is not None else None

    def to_dict(self):
        """The config shape again (amps as decimals), e.g. for the cloud or a UI."""
        return {
            "site_id": self.site_id,
            "timezone": self.tz.text,
            "grid": {"max_current_a": _da_to_amps(self.grid_max_da),
                     "max_power_w": self.grid_max_power_w,
                     "safety_margin_a": _da_to_amps(self.margin_da)},
            "offline_unknown_tokens": self.offline_policy,
            "charging_groups": [
                {"id": g.id, "name": g.name, "max_current_a": _da_to_amps(g.max_da),
                 "stations": [
                     {"id": s.id, "max_current_a": _da_to_amps(s.max_da),
                      "connectors": [
                          {"id": c.id, "phases": c.phases, "wiring": _wiring_text(c.wiring),
                           "min_current_a": _da_to_amps(c.min_da),
                           "max_current_a": _da_to_amps(c.max_da),
                           "can_switch_phases": c.can_switch_phases}
                          for c in s.connectors]}
                     for s in g.stations]}
                for g in self.charging_groups],
        }

    def __repr__(self):
        return "Site(%r, %d stations)" % (self.site_id, len(self._stations))


def _da_to_amps(da):
    return da // 10 if da % 10 == 0 else da / 10


def _wiring_text(wiring):
    return "".join(PHASE_NAMES[i] for i in wiring)


def _build_site(d):
    need_dict(d, "site")
    no_unknown_keys(d, "", _SITE_KEYS)
    site_id = need_id(d.get("site_id"), "site_id")
    for ch in site_id:
        # The site id is an MQTT topic level and the broker user name (docs/cloud-protocol.md).
        if not (is_ascii_letter(ch) or is_ascii_digit(ch) or ch in "_-"):
            raise ValidationError("site_id", site_id, "may hold only letters A-Z a-z, digits, '_' and '-'")
    tz = parse_tz(d.get("timezone"), "timezone")
    grid = need_dict(d.get("grid"), "grid")
    no_unknown_keys(grid, "grid", _GRID_KEYS)
    grid_max_da = amps_to_da(grid.get("max_current_a"), "grid.max_current_a", 1, MAX_CURRENT_DA)
    grid_power = need_opt_int(grid.get("max_power_w"), "grid.max_power_w", 1)
    margin_da = amps_to_da(grid.get("safety_margin_a", 0), "grid.safety_margin_a", 0, MAX_CURRENT_DA)
    if margin_da >= grid_max_da:
        raise ValidationError("grid.safety_margin_a", grid.get("safety_margin_a"),
                              "must be less than grid.max_current_a")
    policy = need_choice(d.get("offline_unknown_tokens", "deny"), "offline_unknown_tokens",
                         OFFLINE_POLICIES)
    groups_in = need_list(d.get("charging_groups"), "charging_groups")
    groups = []
    group_ids = {}
    station_ids = {}
    for gi, g in enumerate(groups_in):
        gf = "charging_groups[%d]" % gi
        groups.append(_build_group(g, gf, grid_max_da, group_ids, station_ids))
    return Site(site_id, tz, grid_max_da, grid_power, margin_da, policy, tuple(groups))


def _build_group(g, gf, grid_max_da, group_ids, station_ids):
    need_dict(g, gf)
    no_unknown_keys(g, gf, _GROUP_KEYS)
    gid = need_id(g.get("id"), gf + ".id")
    if gid in group_ids:
        raise ValidationError(gf + ".id", gid, "duplicate charging group id (also %s)" % group_ids[gid])
    group_ids[gid] = gf
    name = need_str(g.get("name", gid), gf + ".name")
    raw_max = g.get("max_current_a")
    max_da = grid_max_da if raw_max is None else amps_to_da(raw_max, gf + ".max_current_a", 1, MAX_CURRENT_DA)
    stations_in = need_list(g.get("stations", []), gf + ".stations")
    stations = []
    for si, s in enumerate(stations_in):
        sf = "%s.stations[%d]" % (gf, si)
        stations.append(_build_station(s, sf, gid, station_ids))
    if raw_max is not None:
        conns = []
        for st in stations:
            conns.extend(st.connectors)
        _check_room_for_a_car(max_da, conns, gf + ".max_current_a", raw_max)
    return ChargingGroup(gid, name, max_da, tuple(stations))


def _build_station(s, sf, gid, station_ids):
    need_dict(s, sf)
    no_unknown_keys(s, sf, _STATION_KEYS)
    sid = need_id(s.get("id"), sf + ".id", MAX_STATION_ID_LEN)
    if "/" in sid or ":" in sid:
        # The identity is the last URL path segment and the Basic-auth user name.
        raise ValidationError(sf + ".id", sid, "must not contain '/' or ':'")
    if sid in station_ids:
        raise ValidationError(sf + ".id", sid, "duplicate station id (also %s)" % station_ids[sid])
    station_ids[sid] = sf
    conns_in = need_list(s.get("connectors"), sf + ".connectors")
    if not conns_in:
        raise ValidationError(sf + ".connectors", conns_in, "a station needs at least one connector")
    conns = []
    seen = {}
    for ci, c in enumerate(conns_in):
        cf = "%s.connectors[%d]" % (sf, ci)
        conn = _build_connector(c, cf, sid)
        if conn.id in seen:
            raise ValidationError(cf + ".id", conn.id, "duplicate connector id (also %s)" % seen[conn.id])
        seen[conn.id] = cf
        conns.append(conn)
    raw_max = s.get("max_current_a")
    if raw_max is None:
        max_da = 0
        for c in conns:
            max_da += c.max_da
    else:
        max_da = amps_to_da(raw_max, sf + ".max_current_a", 1, MAX_CURRENT_DA)
        _check_room_for_a_car(max_da, conns, sf + ".max_current_a", raw_max)
    return Station(sid, max_da, tuple(conns), gid)


def _check_room_for_a_car(max_da, conns, field, raw):
    # A limit below every connector's minimum means nobody could ever charge there:
    # that is a typo (16 vs 1.6), not a wish.
    lowest = None
    for c in conns:
        if lowest is None or c.min_da < lowest:
            lowest = c.min_da
    if lowest is not None and max_da < lowest:
        raise ValidationError(field, raw, "is below the lowest connector minimum (%s A): nothing could charge"
                              % _da_to_amps(lowest))


def _build_connector(c, cf, sid):
    need_dict(c, cf)
    no_unknown_keys(c, cf, _CONNECTOR_KEYS)
    cid = need_int(c.get("id"), cf + ".id", 1, 99)
    phases = c.get("phases", 3)
    if type(phases) is not int or phases not in (1, 3):
        raise ValidationError(cf + ".phases", phases, "must be 1 or 3")
    wiring_text = c.get("wiring", "L1L2L3" if phases == 3 else None)
    if wiring_text is not None and not isinstance(wiring_text, str):
        raise ValidationError(cf + ".wiring", c.get("wiring"), "must be a text such as L1L2L3 or L2")
    if phases == 3:
        if wiring_text not in ROTATIONS:
            raise ValidationError(cf + ".wiring", wiring_text,
                                  "a 3-phase connector needs one of L1L2L3, L2L3L1, L3L1L2")
        wiring = ROTATIONS[wiring_text]
    else:
        if wiring_text not in PHASE_NAMES:
            # No default: guessing L1 would load the wrong phase if the guess is wrong.
            raise ValidationError(cf + ".wiring", wiring_text,
                                  "a 1-phase connector needs the site phase it is wired to: L1, L2 or L3")
        wiring = (PHASE_NAMES.index(wiring_text),)
    max_da = amps_to_da(c.get("max_current_a"), cf + ".max_current_a", 1, MAX_CURRENT_DA)
    min_da = amps_to_da(c.get("min_current_a", 6), cf + ".min_current_a", 0, MAX_CURRENT_DA)
    if min_da > max_da:
        raise ValidationError(cf + ".min_current_a", c.get("min_current_a", 6),
                              "must not exceed max_current_a (%s)" % c.get("max_current_a"))
    switch = need_bool(c.get("can_switch_phases", False), cf + ".can_switch_phases")
    if switch and phases != 3:
        raise ValidationError(cf + ".can_switch_phases", switch,
                              "only a 3-phase connector can switch phases")
    return Connector(sid, cid, phases, wiring, min_da, max_da, switch)
