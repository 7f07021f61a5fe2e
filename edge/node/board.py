"""The meter node on a MicroPython board: hardware set-up, then edge.node.app.

`edge flash` puts a two-line ``main.py`` on the board that calls ``main()``.
Everything board-specific lives here (machine.UART, Pin, WDT, network.WLAN);
the program itself (app.py) is the same one the tests run on CPython.

A broken configuration file is reported on the REPL and the board stops there
(no watchdog is armed yet): rebooting would only print the same error again.
"""

import json
import time

import machine

from edge.core.errors import ValidationError
from edge.node import app
from edge.node.config import parse
from edge.node.rtu import RtuMaster

CONFIG_FILE = "node_config.json"


def load_config(path=CONFIG_FILE):
    with open(path) as f:
        return parse(json.load(f))


def open_uart(u):
    parity = {"N": None, "E": 0, "O": 1}[u["parity"]]
    kwargs = {"baudrate": u["baudrate"], "bits": 8, "parity": parity, "stop": u["stopbits"],
              "timeout": 0}
    if u["tx"] is not None:
        kwargs["tx"] = machine.Pin(u["tx"])
        kwargs["rx"] = machine.Pin(u["rx"])
    uart = machine.UART(u["id"], **kwargs)
    de = None
    if u["de"] is not None:
        de = machine.Pin(u["de"], machine.Pin.OUT, value=0)
    return uart, de


def connect_wifi(wifi, wdt, out=print):
    import network
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    if wlan.isconnected():
        return wlan
    wlan.connect(wifi["ssid"], wifi["password"] or "")
    for _ in range(300):          # 30 s, then the loop retries through the broker backoff
        if wlan.isconnected():
            out("node: wifi %s connected, %s" % (wifi["ssid"], wlan.ifconfig()[0]))
            return wlan
        if wdt is not None:
            wdt.feed()
        time.sleep_ms(100)
    out("node: wifi %s not connected yet (status %s)" % (wifi["ssid"], wlan.status()))
    return wlan


def mqtt_factory(client_id, server, port, user, password, keepalive):
    from umqtt.simple import MQTTClient
    # Bytes: umqtt.simple writes len() as the length prefix, which must count bytes.
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    return MQTTClient(enc(client_id), server, port=port, user=enc(user), password=enc(password),
                      keepalive=keepalive)


def main(config_path=CONFIG_FILE):
    try:
        cfg = load_config(config_path)
    except (OSError, ValueError, ValidationError) as exc:
        print("node: cannot start: %s: %s (fix the file, or flash again)" % (config_path, exc))
        return None
    wdt = machine.WDT(timeout=cfg["watchdog_ms"]) if cfg["watchdog_ms"] else None
    led = machine.Pin(cfg["led"], machine.Pin.OUT, value=0) if cfg["led"] is not None else None
    if cfg["wifi"] is not None:
        connect_wifi(cfg["wifi"], wdt)
    uart, de = open_uart(cfg["uart"])
    master = RtuMaster(uart, time, de_pin=de, baudrate=cfg["uart"]["baudrate"],
                       timeout_ms=cfg["timeout_ms"])
    node = app.Node(cfg, master, mqtt_factory, time, wdt=wdt, led=led,
                    reset_cause=machine.reset_cause())
    node.run()
    return node
