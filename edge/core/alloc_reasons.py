"""Why each connector gets what it gets, from what the allocation recorded.

The question asked most at a load-managed site is "why is my car paused while
that one charges?". The rule knows the answer as it runs: a rising session stops
at its demand or at the constraint that fills (``by`` in allocation.share), and a
paused one failed admission on one constraint (``why``). This module turns those
numbers into portable data, only when someone asks (Allocation.reasons()): the
cycle itself pays for two lists, not for words.

A reason is a dict:
  code     at_max          at the connector's (car's) maximum
           at_demand       at what the car draws plus headroom: it uses less
           limited         held below its demand by a full circuit phase
           paused_no_fit   paused: its minimum does not fit on a circuit phase
           paused_rotation paused: sessions of its priority ahead of it in the
                           rotation hold that circuit phase; its turn comes
           failsafe        held (or paused) by the fail-safe budget on a grid phase
                           (meter missing, stale or unreadable)
           external_limit  held (or paused) by the external cap on the grid
           uncontrollable  the wallbox ignores our profiles: reserved at its maximum
           idle            no session
  circuit  the circuit id ("grid", "group:garage", "station:CP001") or None
  phase    "L1", "L2", "L3", "all" (one limit for all phases), "power" or None
  paused   True when the connector gets 0 because its minimum does not fit
  left_da  for a paused one: what that circuit phase has left (may be < 0 when
           other load alone exceeds it); else None
  turn_s   for paused_rotation: when it may take a place (UTC s), else None
  text     one line for people, e.g. "paused: 6.0 A min does not fit on grid L3 (4.2 A left)"
"""

from edge.core.circuits import ONE

AT_MAX = "at_max"
AT_DEMAND = "at_demand"
LIMITED = "limited"
PAUSED_NO_FIT = "paused_no_fit"
PAUSED_ROTATION = "paused_rotation"
FAILSAFE = "failsafe"
EXTERNAL_LIMIT = "external_limit"
UNCONTROLLABLE = "uncontrollable"
IDLE = "idle"

CODES = (AT_MAX, AT_DEMAND, LIMITED, PAUSED_NO_FIT, PAUSED_ROTATION, FAILSAFE, EXTERNAL_LIMIT,
         UNCONTROLLABLE, IDLE)
_PHASE_NAMES = ("L1", "L2", "L3")


def explain(result):
    """{key: reason} for every connector of the cycle that made ``result``."""
    layout, order, fixed, alloc, modes, hi, by, why, caps, grid_da, ext_da, cfg = result._trace
    keys = layout.keys
    memos = result.state.sessions
    out = {}
    for i in fixed:
        out[keys[i]] = _reason(UNCONTROLLABLE, None, None, False, None, None,
                               "wallbox ignores our limits: %s reserved" % _amps(layout.max_da[i]))
    for i in order:
        key = keys[i]
        if modes[i] is None:
            w = why[i]
            k = w // 2 if w >= 0 else _first_full(layout, caps, i, 0, layout.min_da[i])
            out[key] = _paused(layout, i, k, w >= 0 and w % 2 == 1 and cfg.rotate_after_s > 0,
                               caps, grid_da, ext_da, memos.get(key), cfg)
            continue
        a = alloc[i]
        if a >= hi[i]:
            if hi[i] < layout.max_da[i]:
                out[key] = _reason(AT_DEMAND, None, None, False, None, None,
                                   "at the car's draw plus headroom (%s)" % _amps(a))
            else:
                out[key] = _reason(AT_MAX, None, None, False, None, None, "at its maximum (%s)" % _amps(a))
            continue
        k = by[i]
        mode = modes[i]
        if k < 0 or not _full(layout.path[i][mode], k, caps):
            k = _first_full(layout, caps, i, mode, 1)
        out[key] = _limited(layout, k, caps, grid_da, ext_da)
    if len(out) < len(keys):
        for key in keys:
            if key not in out:
                out[key] = _reason(IDLE, None, None, False, None, None, "no car")
    return out


def _reason(code, circuit, phase, paused, left_da, turn_s, text):
    return {"code": code, "circuit": circuit, "phase": phase, "paused": paused, "left_da": left_da,
            "turn_s": turn_s, "text": text}


def _full(path, k, caps):
    # No room for one more deciamp on k (a power limit counts once per phase passed).
    return caps[k] < path.count(k)


def _first_full(layout, caps, i, mode, need):
    path = layout.path[i][ONE if mode == ONE else 0]
    for k in path:
        if caps[k] < need * path.count(k):
            return k
    return -1


def where(layout, k):
    """(circuit id, phase name) of constraint k, (None, None) for k < 0."""
    if k < 0:
        return None, None
    cid, p = layout.label[k]
    if p == "3p":
        return cid, "all"
    if p == "power":
        return cid, "power"
    return cid, _PHASE_NAMES[p]


def _root_cause(layout, k, grid_da, ext_da):
    """FAILSAFE or EXTERNAL_LIMIT when k is a grid constraint lowered by one, else None."""
    if k < 0 or layout.label[k][0] != layout.root.id:
        return None
    p = layout.label[k][1]
    ps = (0, 1, 2) if p == "power" else (p,)
    for q in ps:
        if grid_da is None or grid_da[q] is None:
            return FAILSAFE
    for q in ps:
        if ext_da is not None and ext_da < layout.root.max_da[q]:
            return EXTERNAL_LIMIT
    return None


def _name(cid, phase):
    if cid is None:
        return "an unknown limit"
    return "%s %s" % (cid, phase)


def _limited(layout, k, caps, grid_da, ext_da):
    cid, phase = where(layout, k)
    cause = _root_cause(layout, k, grid_da, ext_da)
    if cause == FAILSAFE:
        text = "limited by the fail-safe budget on %s (meter reading missing or bad)" % _name(cid, phase)
    elif cause == EXTERNAL_LIMIT:
        text = "limited by the external cap on %s" % _name(cid, phase)
    else:
        cause = LIMITED
        text = "limited: %s is full" % _name(cid, phase)
    return _reason(cause, cid, phase, False, None, None, text)


def _paused(layout, i, k, rotation, caps, grid_da, ext_da, memo, cfg):
    cid, phase = where(layout, k)
    left = caps[k] if k >= 0 else None
    need = _amps(layout.min_da[i])
    cause = _root_cause(layout, k, grid_da, ext_da)
    turn = None
    where_txt = _name(cid, phase)
    left_txt = " (%s left)" % _amps(left) if left is not None else ""
    if cause == FAILSAFE:
        text = "paused: %s min does not fit in the fail-safe budget on %s%s" % (need, where_txt, left_txt)
    elif cause == EXTERNAL_LIMIT:
        text = "paused: %s min does not fit under the external cap on %s%s" % (need, where_txt, left_txt)
    elif rotation:
        cause = PAUSED_ROTATION
        if memo is not None and memo.paused_since_s is not None:
            turn = memo.paused_since_s + cfg.rotate_after_s
        text = "paused: waiting its turn on %s (rotation)" % where_txt
    else:
        cause = PAUSED_NO_FIT
        text = "paused: %s min does not fit on %s%s" % (need, where_txt, left_txt)
    return _reason(cause, cid, phase, True, left, turn, text)


def _amps(da):
    if da is None:
        return "?"
    sign = "-" if da < 0 else ""
    da = -da if da < 0 else da
    return "%s%d.%d A" % (sign, da // 10, da % 10)
