"""Find a SunSpec meter model on a device: one walk for the node and the gateway.

SunSpec devices start their map with the marker "SunS" (0x5375 0x6E53) at one of a
few well-known addresses, followed by a chain of models, each headed by its ID and
its length L (registers after the header). The chain ends with ID 0xFFFF. The meter
model's data is addressed from its ID register.

``walk`` is the search as a generator of read requests, so that the node's blocking
RTU master (``find_model`` here) and the gateway's asyncio link
(edge/meters/sunspec.py) drive the very same steps: it yields ``(address, count)``,
is sent the words read, or has the read's error thrown in (anything with a ``kind``;
"connect" and "timeout" end the search, an exception answer means "no map here").
It returns the model's address, or raises ``fail(message)``.
"""

SUNS_MARKER = [0x5375, 0x6E53]
END_OF_CHAIN = 0xFFFF
MAX_MODELS = 64          # a hostile chain must not make us walk forever


def walk(bases, model_ids, model_length, fail):
    tried = []
    for base in bases:
        try:
            marker = yield (base, 2)
        except Exception as exc:
            if getattr(exc, "kind", None) in ("connect", "timeout"):
                raise
            tried.append(base)
            continue
        if list(marker) != SUNS_MARKER:
            tried.append(base)
            continue
        address = base + 2
        seen = []
        for _ in range(MAX_MODELS):
            if address + 2 > 65536:
                break
            model_id, length = yield (address, 2)
            if model_id == END_OF_CHAIN:
                break
            if model_id in model_ids:
                if length != model_length:
                    raise fail("SunSpec model %d at %d has length %d, expected %d"
                               % (model_id, address, length, model_length))
                return address
            seen.append(model_id)
            address += 2 + length
        raise fail("SunSpec map at %d has no meter model %s (models found: %s)"
                   % (base, sorted(model_ids), seen or "none"))
    raise fail("no SunSpec marker 'SunS' at addresses %s" % (tried,))


def find_model(read, bases, model_ids, model_length):
    """The node's search: ``read(address, count) -> words`` raises RtuError; so does this."""
    from edge.node.rtu import RtuError
    steps = walk(bases, model_ids, model_length, RtuError)
    request = next(steps)
    while True:
        try:
            try:
                words = read(request[0], request[1])
            except RtuError as exc:
                request = steps.throw(exc)
            else:
                request = steps.send(words)
        except StopIteration as done:
            return done.value
