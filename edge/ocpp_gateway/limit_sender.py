"""Send one station's allocated limits as transaction profiles, skipping what it has."""
from __future__ import annotations

import asyncio
import logging

from edge.ocpp_gateway import peer_text, profiles
from edge.ocpp_gateway.station import StationState

log = logging.getLogger(__name__)


async def send(st: StationState, limits: dict, results: dict, open_by_conn: dict[int, dict],
               timeout_s: float) -> None:
    """``limits``: {(station, connector): (limit_da, phases)}; fills ``results`` per key."""
    for key, (limit_da, phases) in limits.items():
        cid = int(key[1])
        rec = open_by_conn.get(cid)
        if rec is None:
            results[key] = "no_transaction"
            continue
        if st.link is None:
            results[key] = "offline"
            continue
        if st.profiles_unsupported:
            results[key] = "unsupported"    # until its next boot (profiles.py)
            continue
        tx = rec["transaction_id"]
        if rec.get("refused"):
            limit_da = 0    # a refused start charges nothing, whatever was allocated
        if st.profiles.unchanged(cid, tx, int(limit_da), int(phases)):
            results[key] = "unchanged"
            continue
        prof = profiles.tx_profile(cid, tx, int(limit_da), int(phases))
        try:
            # bounded: a silent wallbox must not hold a send slot forever
            ok = await asyncio.wait_for(st.link.cp.send_profile(prof), timeout_s)
        except Exception as e:
            if peer_text.permanent_refusal(e):
                refuse_profiles(st, e)
                results[key] = "unsupported"
                continue
            # once per incident: a silent wallbox is asked again every cycle
            level = logging.WARNING if st.controllable else logging.DEBUG
            log.log(level, "station %s: SetChargingProfile failed (%s); treated as"
                    " uncontrollable until a profile is accepted", st.id,
                    peer_text.describe(e))
            st.controllable = False
            results[key] = "error"
            continue
        st.profiles.record(cid, tx, int(limit_da), int(phases), ok)
        if not ok and st.controllable:
            log.warning("station %s rejects charging profiles: treated as uncontrollable"
                        " load at its maximum", st.id)
        if ok and not st.controllable:
            log.info("station %s accepts charging profiles again", st.id)
        st.controllable = ok
        results[key] = "accepted" if ok else "rejected"


def refuse_profiles(st: StationState, exc: BaseException) -> None:
    """The wallbox cannot take charging profiles at all (NotImplemented/NotSupported).

    Asking again every cycle only floods both logs: it is uncontrollable load at its
    maximum until it boots again (a firmware update may have added the feature).
    """
    if not st.profiles_unsupported:
        log.warning("station %s does not take charging profiles (%s): treated as"
                    " uncontrollable load at its maximum until it boots again", st.id,
                    peer_text.describe(exc))
    st.profiles_unsupported = True
    st.controllable = False
