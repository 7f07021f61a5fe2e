"""Authorization: may this token (or this ad hoc payment) charge here, now?

Every answer is a ``Decision`` with a reason code a support person can read.
Checks, in order: the station and connector exist; the token is known; it is
not blocked and not expired; then each of the token's groups is tried and the
first group (by the multi-group rule) that accepts wins.

Multi-group rule (a token in several groups), one fixed order:
  1. prioritised groups before non-prioritised ones;
  2. then by kind: drivers, cards, eroaming (own users before public roaming);
  3. then by group id (alphabetical).
A group accepts when it is not archived, is active at this connector (or, when
no connector is named, at any connector of the station) and, for eRoaming, the
instant is inside its windows. When no group accepts, the reason is the one of
the group that got furthest (outside_hours > not_active_here > group_archived);
``message`` lists the outcome for every group.

eRoaming groups may list the providers (EMPs) whose customers they admit, and
where; a token of another provider gets ``provider_not_allowed``.

A token the lists accept through a group with ``check_online`` is asked of the
cloud too while the link is up (edge/authorizer.py); ``authorize_checked`` decides
from that answer: the cloud's refusal wins, whatever its code. Without an answer
(offline, too slow) the lists' decision stands.

Unknown tokens: the adapter first asks the cloud (edge/authorizer.py); the
cloud's answer, fresh or cached, is decided by ``authorize_answer`` with the same
group checks. Without an answer, online they are denied (``unknown_token``, or
``remote_start_only`` when the connector takes ad hoc charging, so support
knows the driver must start from the app). While the cloud is unreachable the
site's ``offline_unknown_tokens`` policy applies: ``deny`` (default) or
``accept`` (reason ``offline_unknown_accepted``, no group, no tariff).
"""

from edge.core.tariff import copy_tariff
from edge.core.tokens import T_EXPIRES, T_GROUPS, T_PROVIDER, T_STATUS, T_UID, token_key

ACCEPTED = "accepted"
UNKNOWN_TOKEN = "unknown_token"
TOKEN_BLOCKED = "token_blocked"
TOKEN_EXPIRED = "token_expired"
GROUP_ARCHIVED = "group_archived"
NOT_ACTIVE_HERE = "not_active_here"
OUTSIDE_HOURS = "outside_hours"
UNKNOWN_STATION = "unknown_station"
UNKNOWN_CONNECTOR = "unknown_connector"
OFFLINE_UNKNOWN_ACCEPTED = "offline_unknown_accepted"
REMOTE_START_ONLY = "remote_start_only"
NO_ADHOC_GROUP = "no_adhoc_group"
INVALID_REQUEST = "invalid_request"
PROVIDER_NOT_ALLOWED = "provider_not_allowed"

REASONS = (ACCEPTED, UNKNOWN_TOKEN, TOKEN_BLOCKED, TOKEN_EXPIRED, GROUP_ARCHIVED, NOT_ACTIVE_HERE,
           OUTSIDE_HOURS, UNKNOWN_STATION, UNKNOWN_CONNECTOR, OFFLINE_UNKNOWN_ACCEPTED,
           REMOTE_START_ONLY, NO_ADHOC_GROUP, INVALID_REQUEST, PROVIDER_NOT_ALLOWED)
# For a denial over several groups: the reason of the group that passed most checks.
_DEPTH = {GROUP_ARCHIVED: 0, NOT_ACTIVE_HERE: 1, PROVIDER_NOT_ALLOWED: 2, OUTSIDE_HOURS: 3}
# Refusal reasons of the cloud's online answer the edge passes on as they are.
_CLOUD_REFUSALS = (UNKNOWN_TOKEN, TOKEN_BLOCKED, TOKEN_EXPIRED, NOT_ACTIVE_HERE, OUTSIDE_HOURS,
                   PROVIDER_NOT_ALLOWED)
PRIORITISED_CHARGING_PRIORITY = 9   # OCPP 2.0.1 IdTokenInfo.chargingPriority, -9..9, default 0


class Decision:
    __slots__ = ("accepted", "reason", "group_id", "prioritised", "charging_priority",
                 "tariff", "billing", "expires_s", "message", "kind")

    def __init__(self, accepted, reason, message, group=None, expires_s=None):
        self.accepted = accepted
        self.reason = reason
        self.message = message
        self.expires_s = expires_s
        if group is not None and accepted:
            self.group_id = group.id
            self.kind = group.kind
            self.prioritised = group.prioritised
            self.charging_priority = PRIORITISED_CHARGING_PRIORITY if group.prioritised else 0
            self.tariff = copy_tariff(group.tariff)
            self.billing = group.billing
        else:
            self.group_id = group.id if group is not None else None
            self.kind = group.kind if group is not None else None
            self.prioritised = False
            self.charging_priority = 0
            self.tariff = None
            self.billing = None

    def to_dict(self):
        return {"accepted": self.accepted, "reason": self.reason, "group_id": self.group_id,
                "prioritised": self.prioritised, "charging_priority": self.charging_priority,
                "tariff": copy_tariff(self.tariff), "billing": self.billing,
                "expires_s": self.expires_s, "message": self.message}

    def __repr__(self):
        return "Decision(%s, %s, group=%r)" % ("accepted" if self.accepted else "denied",
                                               self.reason, self.group_id)


def _shown(value):
    # Ids come from wallboxes and apps: keep hostile ones from flooding messages and logs.
    text = repr(value)
    return text if len(text) <= 42 else text[:39] + "..."


def _deny(reason, message, group=None):
    return Decision(False, reason, message, group)


def _check_place(site, station_id, connector_id, connector_required):
    """None if the station/connector exist, else a denial."""
    if type(station_id) is not str or site.station(station_id) is None:
        return _deny(UNKNOWN_STATION, "station %s is not part of site %s" % (_shown(station_id), site.site_id))
    if connector_id is None:
        if connector_required:
            return _deny(UNKNOWN_CONNECTOR, "a connector must be named")
        return None
    if type(connector_id) is not int or site.connector(station_id, connector_id) is None:
        return _deny(UNKNOWN_CONNECTOR, "station %s has no connector %s" % (station_id, _shown(connector_id)))
    return None


def group_verdict(group, site, station_id, connector_id, now_s, provider=None):
    """ACCEPTED or the reason this one group refuses here and now (``provider``: the
    token's EMP, checked against an eRoaming group's providers)."""
    if group.state == "archived":
        return GROUP_ARCHIVED
    if not group.active_at(site, station_id, connector_id):
        return NOT_ACTIVE_HERE
    if group.kind == "eroaming" and not group.admits_provider(site, provider, station_id, connector_id):
        return PROVIDER_NOT_ALLOWED
    if group.kind == "eroaming" and not group.open_at(site.tz, now_s):
        return OUTSIDE_HOURS
    return ACCEPTED


def ordered_groups(book, gids):
    """The token's groups in the order of the multi-group rule."""
    groups = []
    for gid in gids:
        g = book.group(gid)
        if g is not None:
            groups.append(g)
    groups.sort(key=lambda g: g.rank)
    return groups


def _adhoc_here(book, site, station_id, connector_id, now_s):
    for g in book.groups():
        if g.kind == "adhoc" and group_verdict(g, site, station_id, connector_id, now_s) == ACCEPTED:
            return g
    return None


def authorize(book, site, token_uid, station_id, connector_id, now_s, online=True):
    """Decide whether ``token_uid`` may charge at the station/connector at ``now_s``."""
    denied = _check_place(site, station_id, connector_id, False)
    if denied is not None:
        return denied
    tok = book.token_tuple(token_uid)
    if tok is None:
        if not online and site.offline_policy == "accept":
            return Decision(True, OFFLINE_UNKNOWN_ACCEPTED,
                            "unknown token accepted: the cloud is unreachable and the site policy accepts")
        if _adhoc_here(book, site, station_id, connector_id, now_s) is not None:
            return _deny(REMOTE_START_ONLY,
                         "token %s is unknown; this connector takes ad hoc charging started from the app"
                         % _shown(token_uid))
        return _deny(UNKNOWN_TOKEN, "token %s is in no user group of this site" % _shown(token_uid))
    uid = tok[T_UID]
    if tok[T_STATUS] == "blocked":
        return _deny(TOKEN_BLOCKED, "token %s is blocked" % uid)
    expires = tok[T_EXPIRES]
    if expires is not None and now_s >= expires:
        return _deny(TOKEN_EXPIRED, "token %s expired at %d" % (uid, expires))
    best = None
    notes = []
    for g in ordered_groups(book, tok[T_GROUPS]):
        verdict = group_verdict(g, site, station_id, connector_id, now_s, tok[T_PROVIDER])
        if verdict == ACCEPTED:
            return Decision(True, ACCEPTED, "token %s accepted through group %s" % (uid, g.id), g, expires)
        notes.append("%s: %s" % (g.id, verdict))
        if best is None or _DEPTH[verdict] > _DEPTH[best[0]]:
            best = (verdict, g)
    where = station_id if connector_id is None else "%s/%s" % (station_id, connector_id)
    return _deny(best[0], "token %s refused at %s (%s)" % (uid, where, "; ".join(notes)), best[1])


def authorize_answer(book, site, answer, token_uid, station_id, connector_id, now_s):
    """Decide from the cloud's answer to an online check, fresh or cached.

    ``answer``: ``{"accepted", "reason", "group_id", "provider", "expires_s",
    "tariff"}`` (tariff already validated, or None). An acceptance names the group the
    token charges through; that group must be in the lists and accept here and now,
    with the token's provider, exactly as for a listed token; the answer's tariff, when
    given, replaces the group's for this session. A refusal passes the cloud's reason
    on (``unknown_token`` when the cloud's code is not one the edge knows).
    """
    denied = _check_place(site, station_id, connector_id, False)
    if denied is not None:
        return denied
    shown = _shown(token_uid)
    if not answer["accepted"]:
        reason = answer["reason"] if answer["reason"] in _CLOUD_REFUSALS else UNKNOWN_TOKEN
        if reason == UNKNOWN_TOKEN:
            return authorize(book, site, token_uid, station_id, connector_id, now_s, online=True)
        return _deny(reason, "token %s refused by the cloud (%s)" % (shown, _shown(answer["reason"])))
    expires = answer["expires_s"]
    if expires is not None and now_s >= expires:
        return _deny(TOKEN_EXPIRED, "token %s: the cloud's acceptance expired at %d" % (shown, expires))
    g = book.group(answer["group_id"])
    if g is None:
        return _deny(UNKNOWN_TOKEN, "token %s: the cloud accepted it for group %s, which this site's lists lack"
                     % (shown, _shown(answer["group_id"])))
    verdict = group_verdict(g, site, station_id, connector_id, now_s, answer["provider"])
    if verdict != ACCEPTED:
        return _deny(verdict, "token %s (provider %s) refused through group %s: %s"
                     % (shown, _shown(answer["provider"]), g.id, verdict), g)
    d = Decision(True, ACCEPTED, "token %s accepted online through group %s" % (shown, g.id), g, expires)
    if answer.get("tariff") is not None:
        d.tariff = copy_tariff(answer["tariff"])
    return d


def authorize_checked(book, site, answer, token_uid, station_id, connector_id, now_s):
    """A listed token of a ``check_online`` group, decided from the cloud's answer.

    Unlike ``authorize_answer`` a refusal never falls back to the lists (they accept
    the token, or it would not have been asked): the cloud knows what the lists do not
    yet (a card reported stolen, a provider's contract ended). An unknown refusal code
    counts as ``unknown_token``. An acceptance is decided as any online answer.
    """
    if answer["accepted"]:
        return authorize_answer(book, site, answer, token_uid, station_id, connector_id, now_s)
    denied = _check_place(site, station_id, connector_id, False)
    if denied is not None:
        return denied
    reason = answer["reason"] if answer["reason"] in _CLOUD_REFUSALS else UNKNOWN_TOKEN
    return _deny(reason, "token %s is listed but refused online by the cloud (%s)"
                 % (_shown(token_uid), _shown(answer["reason"])))


def authorize_remote_start(book, site, payment_ref, station_id, connector_id, now_s, group_id=None):
    """An ad hoc session started remotely with a payment reference.

    With ``group_id`` that ad hoc group must accept here; without, the first ad
    hoc group that accepts here (prioritised first, then by id) is used.
    """
    denied = _check_place(site, station_id, connector_id, True)
    if denied is not None:
        return denied
    if type(payment_ref) is not str or not payment_ref or len(payment_ref) > 128:
        return _deny(INVALID_REQUEST, "payment reference must be a text of 1..128 characters, got %s"
                     % _shown(payment_ref))
    if group_id is not None:
        g = book.group(group_id) if type(group_id) is str else None
        if g is None or g.kind != "adhoc":
            return _deny(NO_ADHOC_GROUP, "%s is not an ad hoc group of this site" % _shown(group_id))
        candidates = [g]
    else:
        candidates = [g for g in book.groups() if g.kind == "adhoc"]
        candidates.sort(key=lambda g: g.rank)
        if not candidates:
            return _deny(NO_ADHOC_GROUP, "the site has no ad hoc group")
    best = None
    notes = []
    for g in candidates:
        verdict = group_verdict(g, site, station_id, connector_id, now_s)
        if verdict == ACCEPTED:
            return Decision(True, ACCEPTED, "ad hoc session through group %s" % g.id, g)
        notes.append("%s: %s" % (g.id, verdict))
        if best is None or _DEPTH[verdict] > _DEPTH[best[0]]:
            best = (verdict, g)
    return _deny(best[0], "ad hoc start refused at %s/%s (%s)" % (station_id, connector_id, "; ".join(notes)),
                 best[1])


def local_list_entries(book, site, station_id, max_entries, now_s, recent_uids=()):
    """Tokens for a wallbox's local authorization list, most relevant first.

    -> list of (uid, status, expires_s, group_id), at most ``max_entries``.
    Only tokens that would be accepted at some connector of the station without
    the edge: valid, not expired, in a non-archived drivers or cards group
    active at the station. eRoaming tokens are left out because a wallbox list
    cannot express time windows, and tokens of ``check_online`` groups because a
    wallbox that finds them in its own list may start without asking. Order: tokens of prioritised groups, then
    ``recent_uids`` (most recent first), then the rest; within a group by uid.
    ``group_id`` is the group the multi-group rule picks at this station.
    A local list holds tokens per station, not per connector: a token whose
    group is active at only one connector of the station is listed, and the
    wallbox may then accept it at the station's other connectors while the edge
    is unreachable.
    """
    if site.station(station_id) is None or type(max_entries) is not int or max_entries <= 0:
        return []
    if type(recent_uids) not in (list, tuple):
        recent_uids = ()
    eligible = []
    for g in book.groups():
        if (g.kind in ("drivers", "cards") and g.state == "active" and not g.check_online
                and g.active_at(site, station_id, None)):
            eligible.append(g)
    eligible.sort(key=lambda g: g.rank)
    eligible_ids = {}
    for g in eligible:
        eligible_ids[g.id] = g.rank
    tokens = book.tokens_by_key()
    out = []
    seen = set()

    def usable(tok):
        if tok[T_STATUS] != "valid":
            return False
        exp = tok[T_EXPIRES]
        return exp is None or now_s < exp

    def first_group(tok):
        best = None
        for gid in tok[T_GROUPS]:
            rank = eligible_ids.get(gid)
            if rank is not None and (best is None or rank < best[0]):
                best = (rank, gid)
        return None if best is None else best[1]

    def add_from_group(g):
        for key in book.tokens_in_group(g.id):
            if len(out) >= max_entries:
                return
            if key in seen:
                continue
            tok = tokens[key]
            if usable(tok):
                seen.add(key)
                out.append((tok[T_UID], tok[T_STATUS], tok[T_EXPIRES], first_group(tok)))

    for g in eligible:
        if g.prioritised:
            add_from_group(g)
    for uid in recent_uids:
        if len(out) >= max_entries:
            break
        tok = book.token_tuple(uid)
        if tok is None:
            continue
        key = token_key(tok[T_UID])
        gid = first_group(tok)
        if key not in seen and gid is not None and usable(tok):
            seen.add(key)
            out.append((tok[T_UID], tok[T_STATUS], tok[T_EXPIRES], gid))
    for g in eligible:
        if not g.prioritised:
            add_from_group(g)
    return out[:max_entries]
