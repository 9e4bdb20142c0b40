#!/usr/bin/python3
"""Differential test of the AMQP 0-9-1 codec (net/amqp_*.c) against pamqp.

pamqp (Debian's python3-pamqp, 3.x) is an independent implementation of the
same wire format. tests/diff/codec_oracle (C, linked with libringmq.a) speaks
a line protocol on stdin/stdout; see the comment at the top of
codec_oracle.c for the requests and the text dump both sides compare.

Checks, each counted as one case:
  * schema: the C method table and basic properties against pamqp's
    (names, class and method ids, argument types and order);
  * pamqp -> C: random arguments for every pamqp method, marshalled by
    pamqp; the C decoder must accept them, re-encode the same bytes and dump
    the values that were generated (mdec), and likewise content headers
    (hdec) and whole frame streams (fdec: method, content header and body
    frames split at frame_max, heartbeats);
  * C -> pamqp: random typed values go to the C encoder as a dump (menc,
    henc, fenc); pamqp must unmarshal the bytes to the same values.

Known, legitimate differences, so excluded from the generated values:
  * access.request/request-ok: ringmq decodes them (old clients send them),
    pamqp 3 dropped the access class;
  * pamqp only emits the field types t b s u I i l f D S x A T F V: it picks
    the smallest integer type for a Python int, a 32-bit 'f' for a float, and
    never 'B' or 'd'; so those two are covered in the C -> pamqp direction
    only. pamqp also decodes 'L' and a zero octet as field types, which are
    neither in the 0-9-1 errata nor accepted by RabbitMQ or ringmq: never
    generated;
  * pamqp 3.2.1 cannot write an int in -128..-1 to a table (it picks 'b'
    but packs the octet unsigned, a struct.error): such ints come from C only;
  * pamqp writes a decimal's value signed but reads it unsigned (ringmq:
    unsigned, as RabbitMQ): values stay in 0..2^31-1 when pamqp encodes;
  * pamqp packs longlong arguments signed: delivery tags stay below 2^63;
  * pamqp encodes a table's keys sorted, truncates keys over 128 characters
    and keeps the last of duplicate keys: keys are unique, at most 128
    characters, and the expected dump is in sorted order;
  * pamqp decodes shortstrs as UTF-8 only: they are valid UTF-8; longstrs
    that are not UTF-8 come back as bytes, which is compared as such;
  * pamqp omits a property whose value is '' or None, so empty shortstr
    properties are sent only by C;
  * pamqp decodes timestamps with datetime: they stay below year 10000;
  * pamqp's validate() enforces client-side domain rules (ticket 0, the
    exchange-name pattern, delivery_mode 1 or 2, empty cluster_id, ...),
    not wire rules: it is switched off so any wire value is exercised.

The run is bounded and deterministic: RINGMQ_DIFF_SEED (default 20240611)
and RINGMQ_DIFF_CASES (default 2000) override seed and case count. The last
line printed is "codec-diff: N passed, M failed"; the exit status is 1 on any
failure, 77 (skipped) when pamqp is not installed, 99 on a broken setup.
"""

import datetime
import decimal
import os
import random
import re
import struct
import subprocess
import sys

SYSTEM_PYTHON = "/usr/bin/python3"

try:
    from pamqp import base, body, commands, frame, header, heartbeat
except ImportError:
    # Debian's python3-pamqp lives with the system interpreter; another
    # python3 first on PATH (pyenv) does not see it.
    if os.path.realpath(sys.executable) != os.path.realpath(SYSTEM_PYTHON) and os.path.exists(
        SYSTEM_PYTHON
    ):
        os.execv(SYSTEM_PYTHON, [SYSTEM_PYTHON] + sys.argv)
    print("codec-diff: pamqp not installed (apt-get install python3-pamqp): skipped")
    sys.exit(77)

SEED = int(os.environ.get("RINGMQ_DIFF_SEED", "20240611"))
CASES = int(os.environ.get("RINGMQ_DIFF_CASES", "2000"))
ORACLE = os.environ.get("RINGMQ_CODEC_ORACLE", "tests/diff/codec_oracle")
FAILURES_SHOWN_MAX = 10

# pamqp argument names that differ from ringmq's (which follow the spec's).
ARG_RENAMES = {"exchange_type": "type", "global_": "global", "message_type": "type"}
# Methods ringmq has and pamqp 3 does not.
C_ONLY_METHODS = {"access.request", "access.request-ok"}
# Methods followed by a content header and body frames.
CONTENT_METHODS = ["basic.publish", "basic.return", "basic.deliver", "basic.get-ok"]

TIMESTAMP_MAX = 253402300799  # 9999-12-31T23:59:59Z, datetime's last second
KEY_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-$#.é€😀"


# ---- the oracle ----


class Oracle:
    def __init__(self, path):
        self.proc = subprocess.Popen(
            [path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )

    def ask(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            raise RuntimeError("codec_oracle exited (status %s)" % self.proc.poll())
        return answer.rstrip("\n")

    def lines_until_end(self, line):
        out = [self.ask(line)]
        while out[-1] != "end":
            out.append(self.proc.stdout.readline().rstrip("\n"))
        return out[:-1]

    def close(self):
        self.proc.stdin.write("quit\n")
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


# ---- pamqp's names and types ----


def c_method_name(cls):
    """'Connection.StartOk' -> 'connection.start-ok'."""
    klass, method = cls.name.split(".")
    return klass.lower() + "." + re.sub(r"(?<!^)([A-Z])", r"-\1", method).lower()


def c_arg_name(name):
    return ARG_RENAMES.get(name, name)


def pamqp_methods():
    return {c_method_name(cls): cls for cls in commands.INDEX_MAPPING.values()}


def disable_pamqp_validation():
    for cls in commands.INDEX_MAPPING.values():
        cls.validate = base.Frame.validate
    commands.Basic.Properties.validate = lambda self: None


# ---- random values ----


class Gen:
    def __init__(self, rng):
        self.r = rng

    def chance(self, p):
        return self.r.random() < p

    def uint(self, bits):
        top = (1 << bits) - 1
        return self.r.choice([0, 1, top, self.r.randint(0, top), self.r.randint(0, 255)])

    def text(self, bytes_max, chars=None):
        """A str whose UTF-8 form is at most bytes_max bytes: empty, full, or random."""
        pick = self.r.random()
        if pick < 0.15:
            return ""
        if pick < 0.3:
            return "z" * bytes_max
        alphabet = chars or (
            "abcdefghijklmnopqrstuvwxyz./:-_ 0123456789"
            if self.chance(0.7)
            else "aé€😀\u0000\u007f\u0080ß"
        )
        out, size = [], 0
        for _ in range(self.r.randint(1, 40 if self.chance(0.8) else bytes_max)):
            c = self.r.choice(alphabet)
            n = len(c.encode())
            if size + n > bytes_max:
                break
            out.append(c)
            size += n
        return "".join(out)

    def raw(self, n_max):
        return bytes(self.r.randint(0, 255) for _ in range(self.r.randint(0, n_max)))

    def key(self, used):
        while True:
            k = self.text(255, KEY_CHARS)
            if len(k) <= 128 and k not in used:
                used.add(k)
                return k

    def float32(self):
        while True:
            bits = self.r.getrandbits(32)
            v = struct.unpack(">f", struct.pack(">I", bits))[0]
            if v == v:  # not NaN
                return v

    def double(self):
        while True:
            bits = self.r.getrandbits(64)
            v = struct.unpack(">d", struct.pack(">Q", bits))[0]
            if v == v:
                return v

    def timestamp(self):
        return self.r.choice([0, 1, TIMESTAMP_MAX, self.r.randint(0, TIMESTAMP_MAX)])

    # -- values pamqp encodes (pamqp -> C) --

    def pamqp_value(self, depth):
        kinds = ["bool", "int", "decimal", "float", "str", "bytes", "time", "none"]
        if depth < 3:
            kinds += ["dict", "list"]
        kind = self.r.choice(kinds)
        if kind == "bool":
            return self.chance(0.5)
        if kind == "int":
            bits = self.r.choice([8, 16, 17, 32, 33, 64])
            lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
            if bits in (17, 33):  # the unsigned 'u' and 'i' ranges
                lo, hi = 1 << (bits - 2), (1 << (bits - 1)) - 1
            v = self.r.choice([lo, hi, self.r.randint(lo, hi)])
            return v if not -128 <= v < 0 else -129  # see the module comment
        if kind == "decimal":
            while True:
                scale = self.r.randint(0, 9)
                raw = self.r.choice([0, 1, (1 << 31) - 1, self.r.randint(0, (1 << 31) - 1)])
                d = decimal.Decimal(raw).scaleb(-scale)
                if pamqp_decimal_parts(d) == (scale, raw):
                    return d
        if kind == "float":
            return self.float32()
        if kind == "str":
            return self.text(600)
        if kind == "bytes":
            return bytearray(self.raw(64))
        if kind == "time":
            return datetime.datetime.fromtimestamp(self.timestamp(), datetime.timezone.utc)
        if kind == "none":
            return None
        if kind == "dict":
            return self.pamqp_table(depth + 1)
        return [self.pamqp_value(depth + 1) for _ in range(self.r.randint(0, 4))]

    def pamqp_table(self, depth=1):
        used = set()
        n = self.r.choice([0, 1, 3, self.r.randint(0, 17)])
        return {self.key(used): self.pamqp_value(depth) for _ in range(n)}

    # -- typed values C encodes (C -> pamqp): (dump token, what pamqp must read) --

    def typed_value(self, depth):
        kinds = list("tbBsuIilfdDSxTV")
        if depth < 3:
            kinds += ["F", "A"]
        t = self.r.choice(kinds)
        signed = {"b": 8, "s": 16, "I": 32, "l": 64}
        unsigned = {"B": 8, "u": 16, "i": 32}
        if t == "t":
            v = self.chance(0.5)
            return "t:%d" % v, v
        if t in signed:
            bits = signed[t]
            v = self.uint(bits) - (1 << (bits - 1))
            return "%s:%d" % (t, v), v
        if t in unsigned:
            v = self.uint(unsigned[t])
            return "%s:%d" % (t, v), v
        if t == "f":
            v = self.float32()
            return "f:" + struct.pack(">f", v).hex(), v
        if t == "d":
            v = self.double()
            return "d:" + struct.pack(">d", v).hex(), v
        if t == "D":
            scale, raw = self.r.randint(0, 12), self.uint(32)
            return "D:%d,%d" % (scale, raw), decimal.Decimal(raw).scaleb(-scale)
        if t == "S":
            b = self.text(300).encode() if self.chance(0.7) else self.raw(64)
            return "S:" + b.hex(), pamqp_longstr(b)
        if t == "x":
            b = self.raw(64)
            return "x:" + b.hex(), bytearray(b)
        if t == "T":
            ts = self.timestamp()
            return "T:%d" % ts, utc_naive(ts)
        if t == "V":
            return "V:", None
        if t == "F":
            tok, v = self.typed_table(depth + 1)
            return "F:" + tok, v
        items = [self.typed_value(depth + 1) for _ in range(self.r.randint(0, 4))]
        return "A:" + bracket("[", [tok for tok, _ in items], "]"), [v for _, v in items]

    def typed_table(self, depth=1):
        used = set()
        toks, value = [], {}
        for _ in range(self.r.choice([0, 1, 3, self.r.randint(0, 17)])):
            k = self.key(used)
            tok, v = self.typed_value(depth)
            toks.append(k.encode().hex() + "=" + tok)
            value[k] = v
        return bracket("{", toks, "}"), value


def bracket(open_, toks, close):
    return " ".join([open_] + toks + [close])


def utc_naive(ts):
    return datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=ts)


def pamqp_longstr(b):
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return b


def pamqp_decimal_parts(d):
    """(scale, raw) as pamqp's encode.decimal writes them."""
    s = str(d)
    if "." in s:
        scale = len(s.split(".")[-1])
        return scale, int(d * (decimal.Decimal(10) ** scale))
    return 0, int(d)


# ---- the dump pamqp's encoding must decode to (pamqp -> C) ----


def render_int(v):
    for letter, lo, hi in (
        ("b", -128, 127),
        ("s", -32768, 32767),
        ("u", 0, 65535),
        ("I", -(1 << 31), (1 << 31) - 1),
        ("i", 0, (1 << 32) - 1),
        ("l", -(1 << 63), (1 << 63) - 1),
    ):
        if lo <= v <= hi:
            return "%s:%d" % (letter, v)
    raise ValueError(v)


def render_value(v):
    if isinstance(v, bool):
        return "t:%d" % v
    if isinstance(v, int):
        return render_int(v)
    if isinstance(v, decimal.Decimal):
        return "D:%d,%d" % pamqp_decimal_parts(v)
    if isinstance(v, float):
        return "f:" + struct.pack(">f", v).hex()
    if isinstance(v, str):
        return "S:" + v.encode().hex()
    if isinstance(v, bytearray):
        return "x:" + bytes(v).hex()
    if isinstance(v, datetime.datetime):
        return "T:%d" % int(v.timestamp())
    if v is None:
        return "V:"
    if isinstance(v, dict):
        return "F:" + render_table(v)
    if isinstance(v, list):
        return "A:" + bracket("[", [render_value(x) for x in v], "]")
    raise TypeError(v)


def render_table(t):
    return bracket("{", [k.encode().hex() + "=" + render_value(t[k]) for k in sorted(t)], "}")


def render_arg(ctype, v):
    if ctype == "bit":
        return "%d" % bool(v)
    if ctype in ("octet", "short", "long", "longlong"):
        return "%d" % v
    if ctype == "timestamp":
        return "%d" % int(v.timestamp())
    if ctype in ("shortstr", "longstr"):
        return (v if isinstance(v, bytes) else v.encode()).hex()
    if ctype == "table":
        return render_table(v)
    raise TypeError(ctype)


# ---- the test ----


class Diff:
    def __init__(self, oracle, rng):
        self.o = oracle
        self.g = Gen(rng)
        self.r = rng
        self.passed = 0
        self.failed = 0
        self.case_failures = 0
        self.c_methods = {}  # name -> (class_id, method_id, [(type, field)])
        self.c_props = []  # [(type, field, bit)]
        self.pamqp = pamqp_methods()

    def check(self, ok, what, detail=""):
        """Records a failed check of the current case; returns ok."""
        if not ok:
            self.case_failures += 1
            if self.failed + self.case_failures <= FAILURES_SHOWN_MAX:
                print("FAIL %s\n  %s" % (what, str(detail)[:2000]))
        return ok

    def case(self, fn, *args):
        """Runs one case: it passes when none of its checks failed."""
        self.case_failures = 0
        fn(*args)
        if self.case_failures:
            self.failed += 1
        else:
            self.passed += 1

    # -- schema --

    def load_schema(self):
        for line in self.o.lines_until_end("schema"):
            words = line.split()
            if words[0] == "properties":
                self.c_props = [tuple(w.split(":")) for w in words[1:]]
                continue
            args = [tuple(w.split(":")) for w in words[3:]]
            self.c_methods[words[0]] = (int(words[1]), int(words[2]), args)

    def check_schema(self):
        for name, cls in sorted(self.pamqp.items()):
            self.case(self.check_schema_method, name, cls)
        self.case(self.check_schema_rest)

    def check_schema_method(self, name, cls):
        c = self.c_methods.get(name)
        want = (
            cls.index >> 16,
            cls.index & 0xFFFF,
            [(cls.amqp_type(a), c_arg_name(a)) for a in cls.__slots__],
        )
        got = (c[0], c[1], [tuple(x) for x in c[2]]) if c else None
        self.check(got == want, "schema " + name, "C %r, pamqp %r" % (got, want))

    def check_schema_rest(self):
        extra = set(self.c_methods) - set(self.pamqp) - C_ONLY_METHODS
        self.check(not extra, "schema: C methods unknown to pamqp", extra)
        P = commands.Basic.Properties
        want = [
            (P.amqp_type(a), c_arg_name(a), str(P.flags[a].bit_length() - 1)) for a in P.__slots__
        ]
        self.check(self.c_props == want, "schema properties", "C %r, pamqp %r" % (self.c_props, want))

    # -- method arguments --

    def pamqp_arg(self, ctype):
        g = self.g
        if ctype == "bit":
            return g.chance(0.5)
        if ctype == "octet":
            return g.uint(8)
        if ctype == "short":
            return g.uint(16)
        if ctype == "long":
            return g.uint(32)
        if ctype == "longlong":
            return g.uint(63)
        if ctype == "shortstr":
            return g.text(255)
        if ctype == "longstr":
            return g.text(1000)
        if ctype == "table":
            return g.pamqp_table()
        raise TypeError(ctype)

    def method_values(self, name):
        """pamqp instance with random arguments, and the dump C must print."""
        cls = self.pamqp[name]
        obj = cls()
        toks = [name]
        for attr, (ctype, cfield) in zip(cls.__slots__, self.c_methods[name][2]):
            v = self.pamqp_arg(ctype)
            setattr(obj, attr, v)
            toks.append(cfield + "=" + render_arg(ctype, v))
        return obj, " ".join(toks)

    def typed_method(self, name):
        """A dump for C to encode, and the attributes pamqp must read back."""
        cls = self.pamqp[name]
        toks, want = [name], {}
        for attr, (ctype, cfield) in zip(cls.__slots__, self.c_methods[name][2]):
            if ctype == "table":
                tok, v = self.g.typed_table()
            elif ctype == "longstr" and self.g.chance(0.3):
                b = self.g.raw(300)
                tok, v = b.hex(), pamqp_longstr(b)
            else:
                v = self.pamqp_arg(ctype)
                tok = render_arg(ctype, v)
            toks.append(cfield + "=" + tok)
            want[attr] = v
        return " ".join(toks), want

    def case_mdec(self, name):
        obj, dump = self.method_values(name)
        payload = struct.pack(">I", obj.index) + obj.marshal()
        answer = self.o.ask("mdec " + payload.hex())
        want = "ok %s %s" % (payload.hex(), dump)
        self.check(answer == want, "mdec " + name, "got  %s\n  want %s" % (answer, want))

    def case_menc(self, name):
        dump, want = self.typed_method(name)
        answer = self.o.ask("menc " + dump)
        if not self.check(answer.startswith("ok "), "menc " + name, answer + "\n  " + dump):
            return
        raw = bytes.fromhex(answer[3:])
        try:
            _, channel, obj = frame.unmarshal(frame._marshal(1, 3, raw))
            got = {a: getattr(obj, a) for a in obj.__slots__}
        except Exception as e:  # pamqp's failure is the finding
            got = "pamqp: %r" % e
        self.check(got == want, "menc " + name, "pamqp read %r\n  want %r\n  dump %s" % (got, want, dump))

    # -- content headers --

    def pamqp_props(self):
        """Random Basic.Properties (pamqp omits '' and None) and their dump."""
        props = commands.Basic.Properties()
        toks, flags = [], 0
        for (ctype, cfield, bit), attr in zip(self.c_props, props.__slots__):
            setattr(props, attr, None)
            if not self.g.chance(0.5):
                continue
            if ctype == "shortstr":
                v = self.g.text(255) or "x"
            elif ctype == "timestamp":
                v = datetime.datetime.fromtimestamp(self.g.timestamp(), datetime.timezone.utc)
            else:
                v = self.pamqp_arg(ctype)
            setattr(props, attr, v)
            flags |= 1 << int(bit)
            toks.append(cfield + "=" + render_arg(ctype, v))
        return props, flags, toks

    def header_dump(self, body_size, flags, toks):
        return " ".join(["class=60 weight=0 body_size=%d flags=%d" % (body_size, flags)] + toks)

    def case_hdec(self):
        props, flags, toks = self.pamqp_props()
        body_size = self.g.uint(64)
        payload = header.ContentHeader(0, body_size, props).marshal()
        answer = self.o.ask("hdec " + payload.hex())
        want = "ok %s %s" % (payload.hex(), self.header_dump(body_size, flags, toks))
        self.check(answer == want, "hdec", "got  %s\n  want %s" % (answer, want))

    def typed_props(self):
        """A header dump for C (empty strings allowed) and the properties pamqp must read."""
        want, toks, flags = {}, [], 0
        for (ctype, cfield, bit), attr in zip(self.c_props, commands.Basic.Properties.__slots__):
            want[attr] = None
            if not self.g.chance(0.5):
                continue
            if ctype == "table":
                tok, v = self.g.typed_table()
            elif ctype == "timestamp":
                ts = self.g.timestamp()
                tok, v = str(ts), utc_naive(ts)
            else:
                v = self.pamqp_arg(ctype)
                tok = render_arg(ctype, v)
            want[attr] = v
            flags |= 1 << int(bit)
            toks.append(cfield + "=" + tok)
        if want["cluster_id"] is None:
            want["cluster_id"] = ""  # pamqp's default for an absent cluster-id
        return flags, toks, want

    def case_henc(self):
        flags, toks, want = self.typed_props()
        body_size = self.g.uint(64)
        dump = self.header_dump(body_size, flags, toks)
        answer = self.o.ask("henc " + dump)
        if not self.check(answer.startswith("ok "), "henc", answer + "\n  " + dump):
            return
        try:
            h = header.ContentHeader()
            h.unmarshal(bytes.fromhex(answer[3:]))
            got = (h.class_id, h.weight, h.body_size, {a: getattr(h.properties, a) for a in want})
        except Exception as e:
            got = "pamqp: %r" % e
        self.check(got == (60, 0, body_size, want), "henc", "pamqp read %r\n  want %r" % (got, want))

    # -- frame streams --

    def content_method(self):
        return self.r.choice(CONTENT_METHODS)

    def case_fdec(self):
        frame_max = self.r.choice([4096, 8192, 131072])
        chunk = frame_max - 8
        wire, toks = [], []
        for _ in range(self.r.randint(1, 4)):
            if self.g.chance(0.15):
                wire.append(frame.marshal(heartbeat.Heartbeat(), 0))
                toks.append("heartbeat")
                continue
            channel = self.g.uint(16)
            name = self.content_method() if self.g.chance(0.5) else self.r.choice(sorted(self.pamqp))
            obj, dump = self.method_values(name)
            wire.append(frame.marshal(obj, channel))
            toks.append("method ch=%d %s" % (channel, dump))
            if name not in CONTENT_METHODS:
                continue
            props, flags, ptoks = self.pamqp_props()
            data = self.g.raw(self.r.choice([0, 16, 300, 3 * chunk + 5]))
            wire.append(frame.marshal(header.ContentHeader(0, len(data), props), channel))
            for i in range(0, len(data), chunk):
                wire.append(frame.marshal(body.ContentBody(data[i : i + chunk]), channel))
            toks.append("content " + self.header_dump(len(data), flags, ptoks) + " body=" + data.hex())
        stream = b"".join(wire)
        answer = self.o.ask("fdec %d %s" % (frame_max, stream.hex()))
        want = " ".join(["ok", stream.hex()] + toks)
        self.check(answer == want, "fdec", "got  %s\n  want %s" % (answer[:600], want[:600]))

    def case_fenc(self):
        frame_max = self.r.choice([4096, 8192, 131072])
        toks, want = [], []
        for _ in range(self.r.randint(1, 4)):
            if self.g.chance(0.15):
                toks.append("heartbeat")
                want.append(("heartbeat", 0))
                continue
            channel = self.g.uint(16)
            name = self.content_method() if self.g.chance(0.5) else self.r.choice(sorted(self.pamqp))
            dump, args = self.typed_method(name)
            toks.append("method ch=%d %s" % (channel, dump))
            want.append(("method", channel, self.pamqp[name].name, args))
            if name not in CONTENT_METHODS:
                continue
            flags, ptoks, props = self.typed_props()
            data = self.g.raw(self.r.choice([0, 16, 300, 3 * (frame_max - 8) + 5]))
            toks.append("content " + self.header_dump(len(data), flags, ptoks) + " body=" + data.hex())
            want.append(("header", channel, len(data), props))
            if data:
                want.append(("body", channel, data))
        answer = self.o.ask("fenc %d %s" % (frame_max, " ".join(toks)))
        if not self.check(answer.startswith("ok "), "fenc", answer + "\n  " + " ".join(toks)[:600]):
            return
        got = read_stream(bytes.fromhex(answer[3:]), frame_max)
        self.check(got == want, "fenc", "pamqp read %r\n  want %r" % (got, want))

    def run(self):
        self.load_schema()
        self.check_schema()
        names = sorted(self.pamqp)
        kinds = [
            (self.case_mdec, True, 6),
            (self.case_menc, True, 6),
            (self.case_hdec, False, 2),
            (self.case_henc, False, 2),
            (self.case_fdec, False, 1),
            (self.case_fenc, False, 1),
        ]
        plan = [(fn, by_name) for fn, by_name, weight in kinds for _ in range(weight)]
        for i in range(CASES):
            fn, by_name = plan[i % len(plan)]
            self.case(fn, *([names[i % len(names)]] if by_name else []))


def read_stream(raw, frame_max):
    """What pamqp reads from a stream: bodies joined per message, frame sizes checked."""
    got, off = [], 0
    try:
        while off < len(raw):
            n, channel, obj = frame.unmarshal(raw[off:])
            if n > frame_max:
                return "frame of %d bytes over frame_max %d" % (n, frame_max)
            off += n
            if isinstance(obj, heartbeat.Heartbeat):
                got.append(("heartbeat", channel))
            elif isinstance(obj, header.ContentHeader):
                props = {a: getattr(obj.properties, a) for a in obj.properties.__slots__}
                got.append(("header", channel, obj.body_size, props))
            elif isinstance(obj, body.ContentBody):
                if got[-1][0] == "body":
                    if len(got[-1][2]) % (frame_max - 8) != 0:
                        return "a body frame follows a short one"
                    got[-1] = ("body", channel, got[-1][2] + obj.value)
                else:
                    got.append(("body", channel, obj.value))
            else:
                got.append(("method", channel, obj.name, {a: getattr(obj, a) for a in obj.__slots__}))
    except Exception as e:
        return "pamqp: %r at offset %d" % (e, off)
    return got


def main():
    if not os.access(ORACLE, os.X_OK):
        print("codec-diff: %s not built (set RINGMQ_CODEC_ORACLE)" % ORACLE)
        return 99
    disable_pamqp_validation()
    oracle = Oracle(ORACLE)
    diff = Diff(oracle, random.Random(SEED))
    try:
        diff.run()
        oracle.close()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        # The oracle stopped (an internal check of codec_oracle failed, or it crashed).
        print("FAIL codec_oracle: %s" % e)
        diff.failed += 1
    print("seed %d, %d cases requested" % (SEED, CASES))
    print("codec-diff: %d passed, %d failed" % (diff.passed, diff.failed))
    return 1 if diff.failed else 0


if __name__ == "__main__":
    sys.exit(main())
