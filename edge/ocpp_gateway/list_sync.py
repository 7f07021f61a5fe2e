"""Keep one wallbox's local authorization list equal to what the core ranks for it."""
from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

from edge.ocpp_gateway import local_list, peer_text
from edge.ocpp_gateway.station import StationState

log = logging.getLogger(__name__)


async def _no_pacing() -> None:
    return None


async def sync(st: StationState, lists: Any, sessions: Any, default_max: int,
               pace: Callable[[], Awaitable[None]] = _no_pacing) -> list[str]:
    """Push what changed; returns the wallbox's status per update sent.

    The caller holds the station's lock (one list conversation at a time). ``pace`` is
    awaited before each piece of work (ranking the list, each call): a list change
    reaches every wallbox of the site at once, and the control loop must keep its turn
    (pacing.TurnPacer).
    """
    statuses: list[str] = []
    link = st.link
    if link is None or not st.list_supported:
        return statuses
    cap = st.list_max_entries or default_max
    chunk = st.list_chunk or cap
    await pace()
    wanted = lists.local_list(st.id, cap, sessions.recent_tokens(st.id, cap))
    for _attempt in range(2):
        try:
            await pace()
            version = await link.cp.list_version()
            if version < 0:
                # OCPP 1.6: list version -1 means the wallbox has no local list
                st.list_supported = False
                log.info("station %s has no local authorization list", st.id)
                return statuses
            for upd in local_list.plan(st.local_list, wanted, chunk, version,
                                       size_of=link.cp.entry_size,
                                       max_bytes=st.list_max_bytes):
                await pace()
                status = await link.cp.push_list(upd)
                statuses.append(status)
                if status != "Accepted":
                    break
                local_list.apply(st.local_list, upd)
        except Exception as e:
            log.warning("station %s: local list update failed (%s)", st.id,
                        peer_text.describe(e))
            return statuses
        if not statuses or statuses[-1] == "Accepted":
            return statuses
        if statuses[-1] == "NotSupported":
            st.list_supported = False
        if statuses[-1] != "VersionMismatch":
            log.warning("station %s: local list update %s", st.id, statuses[-1])
            return statuses
        st.local_list.reset()   # we lost track of the wallbox's list: Full update next
    return statuses
