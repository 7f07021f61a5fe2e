"""A start the edge refused must not charge: cap it at 0 A, then ask the wallbox to stop.

A wallbox told Invalid for a StartTransaction (or a TransactionEvent's idToken) should
stop by itself (StopTransactionOnInvalidId / TxCtrlr.StopTxOnInvalidId, which the edge
sets at boot), but the setting may be refused or ignored, and a car charging for free
is exactly what the refusal was for. So the edge does both halves itself: a 0 A
TxProfile for the transaction (holds even if the stop is ignored), then a remote stop.
Each half is tried once per refused start; the session stays out of the allocation
(``Gateway.live_sessions``) and every later limit for it is 0 (``limit_sender``).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from edge.ocpp_gateway import profiles
from edge.ocpp_gateway.station import StationState

log = logging.getLogger(__name__)


async def stop_refused(st: StationState, rec: dict[str, Any], timeout_s: float) -> bool:
    """Returns True when the wallbox accepted the remote stop."""
    link = st.link
    if link is None:
        return False
    cid, tx = int(rec["connector"]), rec["transaction_id"]
    phases = next((c.phases for c in st.cfg.connectors if c.id == cid), 3)
    try:
        if st.profiles_unsupported:
            raise RuntimeError("takes no profiles")
        ok = await asyncio.wait_for(link.cp.send_profile(profiles.tx_profile(cid, tx, 0, phases)),
                                    timeout_s)
        st.profiles.record(cid, tx, 0, phases, bool(ok))
    except Exception as e:
        log.debug("station %s: 0 A profile for refused transaction %s failed: %s", st.id, tx,
                  type(e).__name__)
    try:
        stopped = bool(await asyncio.wait_for(link.cp.request_stop(tx), timeout_s))
    except Exception as e:
        log.warning("station %s: could not stop refused transaction %s (%s)", st.id, tx,
                    type(e).__name__)
        return False
    log.info("station %s: refused transaction %s (%s) asked to stop: %s", st.id, tx,
             rec.get("refused"), "accepted" if stopped else "rejected")
    return stopped
