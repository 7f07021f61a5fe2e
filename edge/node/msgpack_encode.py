"""A minimal MessagePack encoder for the meter node (MicroPython and CPython).

The msgpack package does not run on MicroPython. The node only sends, so this
is the encoding half, for the types its messages hold: None, bool, int
(-2**63 .. 2**64-1), float (as float64), str, bytes, list/tuple and dict (or
anything with ``items()``). Each type takes its shortest form, as the msgpack
package does with its defaults (``use_bin_type=True``), so both produce the
same bytes; tests/node/vectors.json holds the proof, checked under both
runtimes. A map is written in the order its ``items()`` yields: MicroPython's
dict does not keep insertion order, which a decoder does not care about.

Format facts: the MessagePack specification (github msgpack/msgpack, spec.md).
"""

import struct


def pack(obj):
    out = []
    _pack(obj, out)
    return b"".join(out)


def _head(out, small_base, small_max, n, codes):
    # codes: (8-bit code or None, 16-bit code, 32-bit code) for lengths past the small form.
    if n <= small_max:
        out.append(bytes((small_base | n,)))
    elif codes[0] is not None and n < 0x100:
        out.append(bytes((codes[0], n)))
    elif n < 0x10000:
        out.append(struct.pack(">BH", codes[1], n))
    elif n < 0x100000000:
        out.append(struct.pack(">BI", codes[2], n))
    else:
        raise ValueError("too long for msgpack: %d" % n)


def _int(out, n):
    if 0 <= n:
        if n < 0x80:
            out.append(bytes((n,)))
        elif n < 0x100:
            out.append(bytes((0xCC, n)))
        elif n < 0x10000:
            out.append(struct.pack(">BH", 0xCD, n))
        elif n < 0x100000000:
            out.append(struct.pack(">BI", 0xCE, n))
        elif n < 0x10000000000000000:
            out.append(b"\xcf" + struct.pack(">II", n >> 32, n & 0xFFFFFFFF))
        else:
            raise ValueError("integer too large for msgpack: %d" % n)
    elif n >= -32:
        out.append(bytes((n & 0xFF,)))
    elif n >= -0x80:
        out.append(struct.pack(">Bb", 0xD0, n))
    elif n >= -0x8000:
        out.append(struct.pack(">Bh", 0xD1, n))
    elif n >= -0x80000000:
        out.append(struct.pack(">Bi", 0xD2, n))
    elif n >= -0x8000000000000000:
        # Two's complement by hand: not every MicroPython port packs 64-bit ints.
        u = n + 0x10000000000000000
        out.append(b"\xd3" + struct.pack(">II", u >> 32, u & 0xFFFFFFFF))
    else:
        raise ValueError("integer too small for msgpack: %d" % n)


def _pack(obj, out):
    if obj is None:
        out.append(b"\xc0")
    elif obj is True:
        out.append(b"\xc3")
    elif obj is False:
        out.append(b"\xc2")
    elif isinstance(obj, int):
        _int(out, obj)
    elif isinstance(obj, float):
        out.append(b"\xcb" + struct.pack(">d", obj))
    elif isinstance(obj, str):
        data = obj.encode("utf-8")
        _head(out, 0xA0, 31, len(data), (0xD9, 0xDA, 0xDB))
        out.append(data)
    elif isinstance(obj, (bytes, bytearray)):
        _head(out, 0, -1, len(obj), (0xC4, 0xC5, 0xC6))
        out.append(bytes(obj))
    elif isinstance(obj, (list, tuple)):
        _head(out, 0x90, 15, len(obj), (None, 0xDC, 0xDD))
        for item in obj:
            _pack(item, out)
    elif hasattr(obj, "items"):
        items = list(obj.items())
        _head(out, 0x80, 15, len(items), (None, 0xDE, 0xDF))
        for key, value in items:
            _pack(key, out)
            _pack(value, out)
    else:
        raise TypeError("cannot msgpack a %s" % type(obj).__name__)
