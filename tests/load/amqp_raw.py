"""Minimal raw AMQP 0-9-1 client pieces for load tests: enough to open many
connections without a client library's per-connection threads or buffers."""
import struct

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
FRAME_END = b"\xce"


def shortstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">B", len(b)) + b


def longstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">I", len(b)) + b


def method_frame(channel, class_id, method_id, args=b""):
    payload = struct.pack(">HH", class_id, method_id) + args
    return struct.pack(">BHI", 1, channel, len(payload)) + payload + FRAME_END


def start_ok(user="guest", password="guest"):
    caps = shortstr("capabilities") + b"F" + struct.pack(">I", 0)
    props = struct.pack(">I", len(caps)) + caps
    response = b"\x00" + user.encode() + b"\x00" + password.encode()
    return method_frame(0, 10, 11, props + shortstr("PLAIN") + longstr(response) + shortstr("en_US"))


def tune_ok(channel_max=2047, frame_max=131072, heartbeat=0):
    return method_frame(0, 10, 31, struct.pack(">HIH", channel_max, frame_max, heartbeat))


def connection_open(vhost="/"):
    return method_frame(0, 10, 40, shortstr(vhost) + shortstr("") + b"\x00")


def parse_frames(buf):
    """Yields (type, channel, payload) for each whole frame; returns the rest."""
    frames = []
    while len(buf) >= 8:
        ftype, channel, size = struct.unpack(">BHI", buf[:7])
        if len(buf) < 8 + size:
            break
        frames.append((ftype, channel, buf[7:7 + size]))
        buf = buf[8 + size:]
    return frames, buf


def method_id(payload):
    return struct.unpack(">HH", payload[:4])
