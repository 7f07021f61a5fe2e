"""What a meter node publishes, and where (the contract with edge/meters/node_source.py).

Topics, on the gateway's broker (each node may write only below its own id, see
edge/deploy/mosquitto/nodes.acl):
    nodes/<node_id>/reading   one message per meter poll, QoS 0, never retained:
                              an old reading must not look new to a gateway that
                              (re)subscribes
    nodes/<node_id>/status    retained; {"online": true, ...} after connecting, and
                              {"online": false} as the last will

A reading carries the raw registers, not values: the gateway decodes them with
the same code as a meter it polls itself (edge/meters/decoder.py), so both
paths give the same numbers, and the node stays small. Map keys:

    v         1, the message version
    node      the node id (the gateway checks it against the topic)
    seq       counts every reading message since the node started (0, 1, ...)
    unit      the meter's Modbus device address on the node's bus
    model     the meter model file the read plan came from
    age_ms    how long before sending the meter's last answer arrived: the gateway
              dates the reading that much before it received it (board clocks are
              not trusted, only durations measured on one board)
    reply_ms  how long the meter took to answer all requests of this poll
    blocks    [[address, [word, ...]], ...] in the order of the read plan
    origin    (SunSpec meters only) the model's address found on the device; the
              blocks' addresses are the plan's plus this
  or, when the poll failed:
    error     timeout | exception | protocol; detail: the master's message
"""

VERSION = 1
PREFIX = "nodes"


def reading_topic(node_id):
    return "%s/%s/reading" % (PREFIX, node_id)


def status_topic(node_id):
    return "%s/%s/status" % (PREFIX, node_id)


def reading(node_id, seq, unit, model, age_ms, reply_ms, blocks):
    return {"v": VERSION, "node": node_id, "seq": seq, "unit": unit, "model": model,
            "age_ms": age_ms, "reply_ms": reply_ms, "blocks": blocks}


def failure(node_id, seq, unit, model, age_ms, kind, detail):
    return {"v": VERSION, "node": node_id, "seq": seq, "unit": unit, "model": model,
            "age_ms": age_ms, "error": kind, "detail": detail[:120]}


def status(node_id, online, uptime_ms=0, reset_cause=None):
    """``reset_cause``: why the board last started (``machine.reset_cause()``, e.g. 3 = the
    watchdog on an ESP32), so the installer can see a node that keeps being reset."""
    msg = {"v": VERSION, "node": node_id, "online": online}
    if online:
        msg["uptime_ms"] = uptime_ms
        msg["reset_cause"] = reset_cause
    return msg
