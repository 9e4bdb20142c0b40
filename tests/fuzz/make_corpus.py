#!/usr/bin/python3
"""Writes the seed corpora of the libFuzzer targets (tests/fuzz/corpus/<target>/).

Seeds are small, valid wire images built by hand with struct (no AMQP
library needed): a few methods of each argument shape, content headers with
no, some and all properties, field tables with every type and some nesting,
and frame streams mixing every frame type. Run from anywhere; rerun after
changing it and commit the files (names are content hashes, so reruns are
idempotent).
"""

import hashlib
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def shortstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">B", len(b)) + b


def longstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">I", len(b)) + b


def field(t, payload):
    return t.encode() + payload


def every_type_entries():
    """Table entries (no length prefix) with one value of every type."""
    inner = shortstr("k") + field("I", struct.pack(">i", -7))
    arr = field("b", b"\x05") + field("S", longstr("x")) + field("V", b"")
    e = [
        (b"t", field("t", b"\x01")),
        (b"b", field("b", b"\xfe")),
        (b"B", field("B", b"\xfe")),
        (b"s", field("s", struct.pack(">h", -2))),
        (b"u", field("u", struct.pack(">H", 65535))),
        (b"I", field("I", struct.pack(">i", -3))),
        (b"i", field("i", struct.pack(">I", 4000000000))),
        (b"l", field("l", struct.pack(">q", -5))),
        (b"f", field("f", struct.pack(">f", 1.5))),
        (b"d", field("d", struct.pack(">d", -2.25))),
        (b"D", field("D", b"\x02" + struct.pack(">I", 12345))),
        (b"S", field("S", longstr("hello"))),
        (b"x", field("x", longstr(b"\x00\xff"))),
        (b"A", field("A", longstr(arr))),
        (b"T", field("T", struct.pack(">Q", 1700000000))),
        (b"F", field("F", longstr(inner))),
        (b"V", field("V", b"")),
    ]
    return b"".join(shortstr(k) + v for k, v in e)


def nested(depth):
    """Table entries nesting `depth` tables below the top level."""
    t = b""
    for _ in range(depth):
        t = shortstr("n") + field("F", longstr(t))
    return t


def nested_arrays(depth):
    """Table entries: one array nesting `depth` arrays (top level included)."""
    a = b""
    for _ in range(depth - 1):
        a = field("A", longstr(a))
    return shortstr("a") + field("A", longstr(a))


def table(entries):
    return longstr(entries)


def method(cls, meth, args=b""):
    return struct.pack(">HH", cls, meth) + args


def methods():
    client_props = table(
        shortstr("product") + field("S", longstr("pika"))
        + shortstr("capabilities") + field("F", longstr(shortstr("publisher_confirms") + field("t", b"\x01")))
    )
    return [
        method(10, 10, b"\x00\x09" + table(every_type_entries()) + longstr("PLAIN AMQPLAIN") + longstr("en_US")),
        method(10, 11, client_props + shortstr("PLAIN") + longstr(b"\x00guest\x00guest") + shortstr("en_US")),
        method(10, 30, struct.pack(">HIH", 2047, 131072, 60)),
        method(10, 40, shortstr("/") + shortstr("") + b"\x01"),
        method(10, 50, struct.pack(">H", 320) + shortstr("CONNECTION_FORCED") + struct.pack(">HH", 0, 0)),
        method(10, 51),
        method(20, 10, shortstr("")),
        method(30, 10, shortstr("/data") + b"\x1f"),
        method(40, 10, struct.pack(">H", 0) + shortstr("ex") + shortstr("topic") + b"\x1f" + table(b"")),
        method(50, 10, struct.pack(">H", 0) + shortstr("q") + b"\x0a" + table(shortstr("x-max-length") + field("l", struct.pack(">q", 10)))),
        method(50, 11, shortstr("q") + struct.pack(">II", 3, 1)),
        method(60, 20, struct.pack(">H", 0) + shortstr("q") + shortstr("ctag") + b"\x02" + table(b"")),
        method(60, 40, struct.pack(">H", 0) + shortstr("amq.direct") + shortstr("rk") + b"\x03"),
        method(60, 60, shortstr("ctag") + struct.pack(">Q", 42) + b"\x01" + shortstr("ex") + shortstr("rk")),
        method(60, 120, struct.pack(">Q", 7) + b"\x03"),
        method(85, 10, b"\x00"),
        method(90, 10),
    ]


def props(flags, values):
    return struct.pack(">H", flags) + b"".join(values)


def headers():
    base = struct.pack(">HHQ", 60, 0, 16)
    full = props(0xFFFC, [
        shortstr("text/plain"), shortstr("utf-8"), table(every_type_entries()), b"\x02", b"\x05",
        shortstr("corr"), shortstr("reply"), shortstr("60000"), shortstr("mid"),
        struct.pack(">Q", 1700000000), shortstr("type"), shortstr("guest"), shortstr("app"),
        shortstr(""),
    ])
    return [
        base + props(0, []),
        base + props(0x1000, [b"\x02"]),
        base + props(0x2000 | 0x0100, [table(nested(6)), shortstr("1000")]),
        base + full,
        struct.pack(">HHQ", 60, 0, 0) + props(0x8000, [shortstr("a" * 255)]),
    ]


def frame(ftype, channel, payload):
    return struct.pack(">BHI", ftype, channel, len(payload)) + payload + b"\xce"


def streams():
    ms = methods()
    hs = headers()
    publish = frame(1, 1, ms[12]) + frame(2, 1, hs[1]) + frame(3, 1, b"0123456789abcdef")
    return [
        b"\x00" + publish,
        b"\x07" + frame(8, 0, b"") + frame(1, 0, ms[2]) + publish * 3,
        b"\x83" + b"".join(frame(1, 0, m) for m in ms[:6]),
        b"\x40" + frame(3, 5, b"z" * 300) + frame(8, 0, b""),
        b"\x01" + publish[:20],
    ]


def write(target, seeds):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for s in seeds:
        name = hashlib.sha1(s).hexdigest()[:16]
        with open(os.path.join(d, name), "wb") as f:
            f.write(s)


def main():
    write("fuzz_method", methods())
    write("fuzz_props", headers())
    write("fuzz_table", [every_type_entries(), table(every_type_entries()), nested(15), nested(16),
                        nested_arrays(15), b""])
    write("fuzz_frame", streams())
    return 0


if __name__ == "__main__":
    sys.exit(main())
