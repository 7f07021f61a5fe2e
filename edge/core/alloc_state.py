"""What the allocation remembers between cycles, and the decisions made from it.

``AllocState`` is immutable in use: ``allocate()`` takes one and returns a new
one, so a caller can keep the previous state, replay a cycle, or test any
moment by building a state by hand.

Per session (by connector key): the session id (a new id on the same connector
starts afresh), since when it charges or is paused, its phase mode and when
that mode last changed. Per connector: the limit last sent, when it changed and
when it last went up.
"""

from edge.core.circuits import FULL, ONE

NORMAL = "normal"
FAILSAFE = "failsafe"


class SessionMemo:
    def __init__(self, session_id, run_since_s, paused_since_s, mode, switched_s):
        self.session_id = session_id
        self.run_since_s = run_since_s        # None while paused
        self.paused_since_s = paused_since_s  # None while charging
        self.mode = mode                      # circuits.FULL or circuits.ONE
        self.switched_s = switched_s          # None: never switched


class Sent:
    def __init__(self, limit_da, phases, changed_s, raised_s=None):
        self.limit_da = limit_da
        self.phases = phases
        self.changed_s = changed_s    # last change of limit or phases
        # Last time the limit went up or the phases changed (cuts keep it): since
        # then the car has only been asked to draw less.
        self.raised_s = changed_s if raised_s is None else raised_s


class AllocState:
    def __init__(self, sessions=None, sent=None, mode=NORMAL, reason=None, mode_since_s=None,
                 hint=None, non_ev_da=None):
        self.sessions = sessions if sessions is not None else {}   # key -> SessionMemo
        self.sent = sent if sent is not None else {}               # key -> Sent
        self.mode = mode
        self.reason = reason
        self.mode_since_s = mode_since_s
        # Only a hint for speed, never needed for the result: (layout, the last
        # order as connector numbers, each connector's sort key, which connectors
        # were in that order, each connector's target pair). The order changes
        # little from cycle to cycle: it is only sorted again when a sort key or the
        # set of sessions changed, and then it is nearly sorted, which is cheap.
        self.hint = hint
        # The non-EV load per site phase the last cycle worked with (None: none, or
        # that phase unmeasured): where the next estimate starts from
        # (alloc_capacity.non_ev_estimate).
        self.non_ev_da = non_ev_da

    def sent_limit(self, key):
        s = self.sent.get(key)
        return s.limit_da if s is not None else None


def order_key(memo, started_s, now_s, rotate_after_s):
    """Where a session stands among sessions of its priority (smaller goes first).

    0  charging for less than rotate_after_s: kept, by arrival
    1  paused for rotate_after_s or more: longest waiting first
    2  charging for rotate_after_s or more: the one charging longest yields first
    3  paused for less, or new: by arrival
    Without rotation (0) only classes 0 and 3 exist. So when there is not enough
    for everyone's minimum the latest arrivals wait, and after rotate_after_s the
    waiting ones take the place of those that charged longest.
    """
    if memo is None:
        return 3, started_s
    if memo.run_since_s is not None:
        if rotate_after_s and now_s - memo.run_since_s >= rotate_after_s:
            return 2, -memo.run_since_s
        return 0, started_s
    if rotate_after_s and now_s - memo.paused_since_s >= rotate_after_s:
        return 1, memo.paused_since_s
    return 3, started_s


def phase_options(spec, memo, now_s, cfg):
    """Phase modes to try, preferred first, as (mode, extra_da needed on top of min).

    A switching connector goes to one phase when its three-phase minimum does not
    fit, and back to three phases when the minimum plus a margin fits again, but
    never sooner than phase_hold_s after its last switch.
    """
    if not spec.can_switch_phases:
        return ((FULL, 0),)
    mode = memo.mode if memo is not None else FULL
    held = memo is not None and memo.switched_s is not None and now_s - memo.switched_s < cfg.phase_hold_s
    if held:
        return ((mode, 0),)
    if mode == FULL:
        return ((FULL, 0), (ONE, 0))
    return ((FULL, cfg.phase_up_margin_da), (ONE, 0))


def next_memo(memo, session_id, mode, charging, now_s):
    """The memo after this cycle; the old object is reused when nothing changed."""
    if memo is None:
        # A new session starts in the connector's full mode: choosing one phase
        # at once counts as a switch, so it is held like any other.
        switched = now_s if mode != FULL else None
        if charging:
            return SessionMemo(session_id, now_s, None, mode, switched)
        return SessionMemo(session_id, None, now_s, mode, switched)
    switched = memo.switched_s
    if mode != memo.mode:
        switched = now_s
    if charging:
        run = memo.run_since_s if memo.run_since_s is not None else now_s
        if run == memo.run_since_s and switched == memo.switched_s and mode == memo.mode:
            return memo
        return SessionMemo(session_id, run, None, mode, switched)
    paused = memo.paused_since_s if memo.paused_since_s is not None else now_s
    if paused == memo.paused_since_s and switched == memo.switched_s and mode == memo.mode:
        return memo
    return SessionMemo(session_id, None, paused, mode, switched)
