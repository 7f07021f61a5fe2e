"""`edge validate --probe`: read each meter once and connect to the cloud broker, saying what came back.

The broker is tried with the site's credentials under a client id of its own
(``edge-<site>-probe``), so a running service's session is left alone.
"""
from __future__ import annotations

import asyncio
import logging
import ssl
import threading

from edge.config import EdgeConfig


def probe(cfg: EdgeConfig, timeout_s: float = 10.0) -> bool:
    # The lines printed here say it all; the poller's own incident warnings would repeat them.
    logging.getLogger("edge").setLevel(logging.CRITICAL)
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    ok = asyncio.run(_meters(cfg))
    if cfg.cloud is not None:
        error = broker_error(cfg, timeout_s)
        where = f"{cfg.cloud.host}:{cfg.cloud.port}"
        print(f"probe cloud broker {where}: " + ("connected and logged in as "
                                                 f"{cfg.cloud.username or '(anonymous)'}" if error is None
                                                 else f"FAILED: {error}"))
        ok = ok and error is None
    return ok


async def _meters(cfg: EdgeConfig, node_wait_s: float = 5.0) -> bool:
    from edge.meters.poller import MeterPoller
    poller = MeterPoller(cfg.meters)
    ok = True
    nodes = None
    try:
        if cfg.nodes is not None:
            # A node meter is not polled: its node's next reading is awaited on the broker.
            from edge.meters.node_source import NodeSource
            nodes = NodeSource(cfg.nodes, cfg.meters, poller, site_id=cfg.site.site_id + "-probe")
            await nodes.start()
            waiting = [m.id for m in cfg.meters if m.source == "node"]
            loop = asyncio.get_running_loop()
            deadline = loop.time() + node_wait_s
            while loop.time() < deadline and any(poller.latest(i) is None for i in waiting):
                await asyncio.sleep(0.05)
        for m in cfg.meters:
            r = await poller.poll_once(m.id)
            if r is None and m.source == "node":
                ok = False
                why = poller.status(m.id)["last_error"] or (
                    f"no reading from meter node {m.node} within {node_wait_s:g} s (is it powered, "
                    f"on the network, and its account in the broker?)")
                print(f"probe meter {m.id}: FAILED: {why}")
                continue
            if r is None:
                ok = False
                print(f"probe meter {m.id}: FAILED: {poller.status(m.id)['last_error']}")
                continue
            amps = "/".join("-" if c is None else f"{c / 10:g}" for c in r.current_da)
            print(f"probe meter {m.id}: {r.power_w} W, {amps} A per phase, import {r.import_wh} Wh")
    finally:
        if nodes is not None:
            await nodes.stop()
        await poller.stop()
    return ok


def broker_error(cfg: EdgeConfig, timeout_s: float) -> str | None:
    """None when the broker accepted the site's login, else what went wrong."""
    import paho.mqtt.client as mqtt
    link = cfg.cloud
    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                         client_id=f"edge-{cfg.site.site_id}-probe", protocol=mqtt.MQTTv311)
    if link.username is not None:
        client.username_pw_set(link.username, link.password)
    answered = threading.Event()
    result: dict = {}

    def on_connect(_client, _userdata, _flags, reason, _props) -> None:
        result["reason"] = reason
        answered.set()

    client.on_connect = on_connect
    try:
        if link.tls is not None:
            client.tls_set(ca_certs=link.tls.ca_file, certfile=link.tls.cert_file, keyfile=link.tls.key_file,
                           cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
            client.tls_insecure_set(link.tls.insecure_skip_hostname)
        client.connect(link.host, link.port, keepalive=10)
    except (OSError, ssl.SSLError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    client.loop_start()
    try:
        if not answered.wait(timeout_s):
            return f"no answer to CONNECT within {timeout_s:g} s"
        reason = result["reason"]
        if reason.is_failure:
            return f"broker refused the login: {reason}"
        return None
    finally:
        client.disconnect()
        client.loop_stop()
