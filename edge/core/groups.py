"""User groups: the four kinds, their rules, and where a group is active.

A group decides who may charge where and under which tariff. Kinds:
  - ``drivers``  Drivers & Vehicles: drivers with tokens; billing ``automatic``
                 (tariff required) or ``record_only`` (tariff optional).
  - ``cards``    Charging Cards Only: tokens directly in the group; never billed,
                 an optional tariff is used for recording only.
  - ``adhoc``    Ad hoc: no tokens at all; sessions start only by a remote start
                 naming the connector and a payment reference; price per kWh only.
  - ``eroaming`` eRoaming: tokens of partner providers, weekly availability
                 windows in site local time; the tariff is the agreed payout per
                 kWh. At most one non-archived eRoaming group per site.

``check_online`` (optional, default false; not for ad hoc groups): a token the lists
accept through this group is still asked of the cloud while the link is up, and the
cloud's refusal wins (edge/authorizer.py). It is the group's, not the token's,
because a group is where the product keeps the conditions its users charge under
(the eRoaming group mirrors partner providers whose contracts end at the provider,
not here), and a flag per group costs nothing per token on a board's heap.

``validate_group`` checks a group dict completely against the site and returns
a ``Group``; nothing is built from a dict that fails anywhere.
"""

from edge.core.checks import (
    extra_fields, need_bool, need_choice, need_dict, need_id, need_list, need_str, no_unknown_keys,
    with_extra,
)
from edge.core.errors import ValidationError
from edge.core.tariff import copy_tariff, validate_tariff
from edge.core.windows import in_windows, parse_windows, windows_to_list

KINDS = ("drivers", "cards", "adhoc", "eroaming")
BILLINGS = ("automatic", "record_only")
STATES = ("active", "archived")
# Multi-group rule, second key: own users before public roaming (see authorize.py).
KIND_RANK = {"drivers": 0, "cards": 1, "eroaming": 2, "adhoc": 3}
# Billing a kind must have; None = the group chooses (drivers).
FIXED_BILLING = {"cards": "record_only", "adhoc": "automatic", "eroaming": "automatic"}

_GROUP_KEYS = ("id", "name", "kind", "billing", "tariff", "active_on", "prioritised", "state", "windows",
               "providers", "check_online")
_ACTIVE_KEYS = ("site", "charging_groups", "stations", "connectors")
_PROVIDER_KEYS = ("id", "active_on")
MAX_PROVIDERS = 1000
MAX_PROVIDER_LEN = 64


def provider_key(provider_id):
    """EMP ids compare without case and without the ``*``/``-`` separators of the
    eMI3 and OCPI spellings: ``DE*ABC``, ``de-abc`` and ``DEABC`` are one provider."""
    return provider_id.upper().replace("*", "").replace("-", "")


def place_matches(on, site, station_id, connector_id):
    """Does an ``active_on`` tuple (on_site, cgroups, stations, connectors) cover the
    connector (with None: any connector of the station)?"""
    station = site.station(station_id)
    if station is None:
        return False
    if on[0] or station.group_id in on[1] or station_id in on[2]:
        return True
    for sid, cid in on[3]:
        if sid == station_id and (connector_id is None or cid == connector_id):
            return True
    return False


class Group:
    """A validated user group. Treat as read-only: books share Group objects."""

    __slots__ = ("id", "name", "kind", "billing", "tariff", "prioritised", "state",
                 "on_site", "on_cgroups", "on_stations", "on_connectors", "windows", "rank",
                 "extra", "providers", "check_online")

    def __init__(self, id, name, kind, billing, tariff, prioritised, state,
                 on_site, on_cgroups, on_stations, on_connectors, windows, extra=None,
                 providers=None, check_online=False):
        self.id = id
        self.name = name
        self.kind = kind
        self.billing = billing
        self.tariff = tariff
        self.prioritised = prioritised
        self.state = state
        self.on_site = on_site
        self.on_cgroups = on_cgroups          # tuple of charging group ids, as given
        self.on_stations = on_stations        # tuple of station ids, as given
        self.on_connectors = on_connectors    # tuple of (station_id, connector_id)
        self.windows = windows                # parsed windows (eroaming), else ()
        self.extra = extra                    # fields this version does not know, or None
        # eroaming: None = every provider; else a tuple of (id as given, key, place or
        # None = wherever the group is active), place as validate_active_on returns it
        self.providers = providers
        self.check_online = check_online      # ask the cloud about its tokens while online
        # The multi-group rule as one sortable key: prioritised first, kind, id.
        self.rank = (0 if prioritised else 1, KIND_RANK[kind], id)

    @property
    def archived(self):
        return self.state == "archived"

    def active_at(self, site, station_id, connector_id=None):
        """Is the group configured for this connector (or, with None, any connector of the station)?

        Archived state and time windows are NOT considered here; see ``authorize``.
        """
        return place_matches((self.on_site, self.on_cgroups, self.on_stations, self.on_connectors),
                             site, station_id, connector_id)

    def admits_provider(self, site, provider, station_id, connector_id=None):
        """eRoaming: may customers of ``provider`` charge at this connector (None: at
        some connector of the station where the group is active too)?"""
        if self.providers is None:
            return True
        if type(provider) is not str or not provider:
            return False
        key = provider_key(provider)
        for _pid, pkey, place in self.providers:
            if pkey != key:
                continue
            if place is None:
                return True
            if connector_id is not None:
                if place_matches(place, site, station_id, connector_id):
                    return True
            else:
                station = site.station(station_id)
                for conn in station.connectors if station is not None else ():
                    if place_matches(place, site, station_id, conn.id) and self.active_at(site, station_id, conn.id):
                        return True
        return False

    def open_at(self, tz, utc_s):
        """eRoaming: inside the availability windows? Other kinds are always open."""
        if self.kind != "eroaming":
            return True
        return in_windows(self.windows, tz, utc_s)

    def to_dict(self):
        d = {
            "id": self.id, "name": self.name, "kind": self.kind, "billing": self.billing,
            "tariff": copy_tariff(self.tariff),
            "active_on": active_on_to_dict((self.on_site, self.on_cgroups, self.on_stations,
                                            self.on_connectors)),
            "prioritised": self.prioritised, "state": self.state,
            "windows": windows_to_list(self.windows),
        }
        if self.providers is not None:
            d["providers"] = providers_to_list(self.providers)
        if self.check_online:
            d["check_online"] = True
        return with_extra(d, self.extra)

    def replace(self, **changes):
        """A new Group with some fields changed (callers validate the values)."""
        d = {}
        for name in ("id", "name", "kind", "billing", "tariff", "prioritised", "state",
                     "on_site", "on_cgroups", "on_stations", "on_connectors", "windows", "extra",
                     "providers", "check_online"):
            d[name] = changes[name] if name in changes else getattr(self, name)
        return Group(**d)

    def __repr__(self):
        return "Group(%r, kind=%r, state=%r)" % (self.id, self.kind, self.state)


def validate_active_on(a, field, site):
    """-> (on_site, cgroups tuple, stations tuple, connectors tuple), checked against the site."""
    need_dict(a, field)
    no_unknown_keys(a, field, _ACTIVE_KEYS)
    on_site = need_bool(a.get("site", False), field + ".site")
    cgroups = _known_ids(a, "charging_groups", field, site.charging_group, "unknown charging group")
    stations = _known_ids(a, "stations", field, site.station, "unknown station")
    conns = []
    for i, pair in enumerate(need_list(a.get("connectors", []), field + ".connectors")):
        f = "%s.connectors[%d]" % (field, i)
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ValidationError(f, pair, "must be [station_id, connector_id]")
        sid, cid = pair[0], pair[1]
        if not isinstance(sid, str) or site.station(sid) is None:
            raise ValidationError(f + "[0]", sid, "unknown station")
        if isinstance(cid, bool) or not isinstance(cid, int) or site.connector(sid, cid) is None:
            raise ValidationError(f + "[1]", cid, "unknown connector of station %s" % sid)
        key = (sid, cid)
        if key in conns:
            raise ValidationError(f, pair, "listed twice")
        conns.append(key)
    return on_site, tuple(cgroups), tuple(stations), tuple(conns)


def check_tariff_for_kind(kind, billing, tariff, field):
    """Kind-specific tariff rules; ``tariff`` is already validated (or None)."""
    if tariff is None:
        if kind in ("adhoc", "eroaming") or billing == "automatic":
            raise ValidationError(field, None, "a %s group with %s billing needs a tariff" % (kind, billing))
        return
    if kind in ("adhoc", "eroaming"):
        what = "an ad hoc price" if kind == "adhoc" else "an eRoaming payout"
        if tariff["parking"] is not None:
            raise ValidationError(field + ".parking", tariff["parking"], what + " is per kWh only: no parking fee")
        if tariff["monthly_base_m"] != 0:
            raise ValidationError(field + ".monthly_base_m", tariff["monthly_base_m"],
                                  what + " is per kWh only: no monthly base fee")


def validate_group(g, field, site, strict=False):
    """Validate one group dict completely; return a Group.

    Fields this version does not know are kept (``Group.extra``) for the cloud's
    lists; ``strict`` refuses them instead (local operations, where one is a typo).
    """
    need_dict(g, field)
    if strict:
        no_unknown_keys(g, field, _GROUP_KEYS)
    extra = extra_fields(g, field, _GROUP_KEYS)
    gid = need_id(g.get("id"), field + ".id")
    name = need_str(g.get("name"), field + ".name", 100)
    kind = need_choice(g.get("kind"), field + ".kind", KINDS)
    fixed = FIXED_BILLING.get(kind)
    if "billing" in g or fixed is None:
        billing = need_choice(g.get("billing"), field + ".billing", BILLINGS)
        if fixed is not None and billing != fixed:
            raise ValidationError(field + ".billing", billing, "a %s group is always %s" % (kind, fixed))
    else:
        billing = fixed
    tariff = g.get("tariff")
    if tariff is not None:
        tariff = validate_tariff(tariff, field + ".tariff")
    check_tariff_for_kind(kind, billing, tariff, field + ".tariff")
    on = validate_active_on(g.get("active_on", {}), field + ".active_on", site)
    prioritised = need_bool(g.get("prioritised", False), field + ".prioritised")
    state = need_choice(g.get("state", "active"), field + ".state", STATES)
    raw_windows = g.get("windows")
    if kind == "eroaming":
        windows = parse_windows([] if raw_windows is None else raw_windows, field + ".windows")
    else:
        if raw_windows:
            raise ValidationError(field + ".windows", raw_windows, "only eRoaming groups have availability windows")
        if raw_windows is not None:
            need_list(raw_windows, field + ".windows")
        windows = ()
    providers = validate_providers(g.get("providers"), field + ".providers", site, kind)
    check_online = need_bool(g.get("check_online", False), field + ".check_online")
    if check_online and kind == "adhoc":
        raise ValidationError(field + ".check_online", True, "an ad hoc group has no tokens to check online")
    return Group(gid, name, kind, billing, tariff, prioritised, state, on[0], on[1], on[2], on[3], windows,
                 extra, providers, check_online)


def validate_providers(value, field, site, kind):
    """An eRoaming group's ``providers``: null (every provider) or a list of
    ``{"id": "DE*ABC", "active_on": null | <active_on>}`` (null: wherever the group is
    active). Closed value objects: unknown fields are refused."""
    if value is None:
        return None
    if kind != "eroaming":
        raise ValidationError(field, value, "only eRoaming groups list providers")
    need_list(value, field)
    if len(value) > MAX_PROVIDERS:
        raise ValidationError(field, len(value), "at most %d providers" % MAX_PROVIDERS)
    out = []
    seen = {}
    for i, entry in enumerate(value):
        f = "%s[%d]" % (field, i)
        need_dict(entry, f)
        no_unknown_keys(entry, f, _PROVIDER_KEYS)
        pid = need_id(entry.get("id"), f + ".id", MAX_PROVIDER_LEN)
        key = provider_key(pid)
        if not key:
            raise ValidationError(f + ".id", pid, "must hold more than separators")
        if key in seen:
            raise ValidationError(f + ".id", pid, "the same provider as %s" % seen[key])
        seen[key] = pid
        place = entry.get("active_on")
        if place is not None:
            place = validate_active_on(place, f + ".active_on", site)
        out.append((pid, key, place))
    return tuple(out)


def providers_to_list(providers):
    if providers is None:
        return None
    out = []
    for pid, _key, place in providers:
        out.append({"id": pid, "active_on": None if place is None else active_on_to_dict(place)})
    return out


def active_on_to_dict(on):
    return {"site": on[0], "charging_groups": list(on[1]), "stations": list(on[2]),
            "connectors": [[s, c] for s, c in on[3]]}


def check_one_eroaming(groups, field):
    """At most one non-archived eRoaming group per site (archived ones keep their history)."""
    found = None
    for gid in sorted(groups):
        g = groups[gid]
        if g.kind == "eroaming" and g.state == "active":
            if found is not None:
                raise ValidationError(field, gid, "a site has at most one active eRoaming group (already %s)" % found)
            found = gid


def _known_ids(a, key, field, lookup, unknown):
    """The ids listed under ``a[key]``: each one known to ``lookup``, none twice."""
    out = []
    for i, ident in enumerate(need_list(a.get(key, []), field + "." + key)):
        f = "%s.%s[%d]" % (field, key, i)
        if not isinstance(ident, str) or lookup(ident) is None:
            raise ValidationError(f, ident, unknown)
        if ident in out:
            raise ValidationError(f, ident, "listed twice")
        out.append(ident)
    return out
