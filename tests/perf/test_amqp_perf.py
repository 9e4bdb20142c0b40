"""amqp-perf against a ringmq started on a free loopback port: bounded
throughput runs that must verify (every message once, in order per
producer), confirms, fanout, a queue pattern, the JSON/CSV/SVG outputs,
each sub-command for about a second, the sink mode, and the usage errors.

Environment: RINGMQ_BIN (the broker), RINGMQ_BUILDDIR (amqp-perf is
there). Prints `perf: N passed, M failed` and exits 1 on a failure.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import traceback

BIN = os.environ.get("RINGMQ_BIN", "./ringmq")
TOOL = os.path.join(os.environ.get("RINGMQ_BUILDDIR", "."), "amqp-perf")
RUN_TIMEOUT_S = 30


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, deadline_s=10):
    end = time.time() + deadline_s
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def perf(uri, *args, expect_rc=0):
    cmd = [TOOL, *args, "-h", uri]
    cp = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    if cp.returncode != expect_rc:
        raise AssertionError(f"{' '.join(cmd)}: rc {cp.returncode}, want {expect_rc}\n"
                             f"stdout: {cp.stdout[-2000:]}\nstderr: {cp.stderr[-2000:]}")
    return cp


def perf_json(uri, *args, expect_rc=0):
    cp = perf(uri, *args, "--json", expect_rc=expect_rc)
    lines = [ln for ln in cp.stdout.splitlines() if ln.startswith("{")]
    assert len(lines) == 1, cp.stdout
    return json.loads(lines[0])


def check_latency(r):
    lat = r["latency_us"]
    assert lat["count"] == r["consumed"], r
    assert 0 < lat["p50"] <= lat["p75"] <= lat["p95"] <= lat["p99"] <= lat["p99_9"], lat
    assert lat["p99_9"] <= lat["max"] * 1.02, lat


def t_verify_1x1(uri, _tmp):
    r = perf_json(uri, "-x1", "-y1", "-C", "20000", "--verify")
    assert r["published"] == 20000 and r["consumed"] == 20000 and r["verify"] is True, r
    check_latency(r)


def t_verify_2x2_shared_queue(uri, _tmp):
    r = perf_json(uri, "-x2", "-y2", "-C", "20000", "--verify", "-u", "perf-shared")
    assert r["published"] == 40000 and r["consumed"] == 40000 and r["verify"] is True, r


def t_verify_2x2_own_queues(uri, _tmp):
    r = perf_json(uri, "-x", "2", "-y", "2", "-C", "20000", "--verify", "-q", "100", "-A", "10")
    assert r["published"] == 40000 and r["consumed"] == 80000 and r["verify"] is True, r


def t_confirms(uri, _tmp):
    r = perf_json(uri, "-x1", "-y1", "-C", "20000", "-c", "100", "--verify")
    assert r["confirmed"] == 20000 and r["nacked"] == 0 and r["verify"] is True, r
    c = r["confirm_latency_us"]
    assert c["count"] == 20000 and 0 < c["p50"] <= c["p99"] <= c["max"] * 1.02, c


def t_fanout(uri, _tmp):
    r = perf_json(uri, "-x2", "-y2", "-e", "perf-fanout", "-t", "fanout", "-C", "10000",
                  "--verify", "-f", "persistent")
    assert r["published"] == 20000 and r["consumed"] == 40000 and r["verify"] is True, r


def t_queue_pattern(uri, _tmp):
    r = perf_json(uri, "-x2", "-y2", "--queue-pattern", "perf-pat-%d", "--queue-pattern-from",
                  "1", "--queue-pattern-to", "2", "-C", "5000", "--verify", "-ad", "false",
                  "-Q", "x-max-length=100000")
    assert r["consumed"] == 10000 and r["verify"] is True, r


def t_verify_fails_when_consumers_stop(uri, _tmp):
    r = perf_json(uri, "-x1", "-y1", "-C", "20000", "-D", "100", "-a", "--verify",
                  expect_rc=1)
    assert r["consumed"] == 100 and r["verify"] is False, r


def t_rate_and_outputs(uri, tmp):
    csv, svg = os.path.join(tmp, "series.csv"), os.path.join(tmp, "plot.svg")
    cp = perf(uri, "-x1", "-y1", "-r", "2000", "-z", "2.5", "--csv", csv, "--plot", svg)
    assert "summary:" in cp.stdout and "latency" in cp.stdout, cp.stdout
    progress = [ln for ln in cp.stdout.splitlines() if ln.startswith("id:")]
    assert len(progress) == 2, cp.stdout
    rows = open(csv).read().splitlines()
    assert rows[0].startswith("time_s,published") and len(rows) == 3, rows
    sent = int(rows[1].split(",")[1])
    assert 1500 <= sent <= 2500, rows  # -r 2000 per second
    text = open(svg).read()
    assert text.startswith("<svg") and "polyline" in text and text.endswith("</svg>\n")


def t_subcommands(uri, _tmp):
    for cmd in ("queue-churn", "connection-churn", "bind-churn", "consumer-churn"):
        r = perf_json(uri, cmd, "-z", "1")
        assert r["scenario"] == cmd and r["ops"] > 10 and not r["failed"], r
        assert r["op_latency_us"]["p50"] > 0, r
    for cmd in ("queue-count", "connection-count"):
        r = perf_json(uri, cmd, "--count", "200")
        assert r["scenario"] == cmd and r["ops"] == 200, r


def t_sink(_uri, _tmp):
    port = free_port()
    sink = subprocess.Popen([TOOL, "sink", "--port", str(port)], stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        suri = f"amqp://guest:guest@127.0.0.1:{port}"
        r = perf_json(suri, "-x1", "-y1", "-z", "1", "-c", "1000", "-q", "1000", "-A", "100")
        assert r["published"] > 100000 and r["confirmed"] > 0, r
        assert r["consumed"] > 100000, r
    finally:
        sink.kill()
        sink.wait()


def t_usage_errors(uri, _tmp):
    perf(uri, "--no-such-flag", expect_rc=2)
    perf(uri, "--verify", "-x1", "-y1", expect_rc=2)  # needs -C
    perf(uri, "no-such-command", expect_rc=2)
    cp = perf(uri, "--help")
    assert "usage: amqp-perf" in cp.stdout


TESTS = [t_verify_1x1, t_verify_2x2_shared_queue, t_verify_2x2_own_queues, t_confirms,
         t_fanout, t_queue_pattern, t_verify_fails_when_consumers_stop, t_rate_and_outputs,
         t_subcommands, t_sink, t_usage_errors]


def main():
    if not os.access(TOOL, os.X_OK):
        print(f"perf: {TOOL} not built; skipped")
        return 77
    port = free_port()
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        broker = subprocess.Popen([BIN, "--port", str(port), "--shards", "2", "--data-dir",
                                   os.path.join(tmp, "data")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(port)
            uri = f"amqp://guest:guest@127.0.0.1:{port}"
            for t in TESTS:
                start = time.time()
                try:
                    if broker.poll() is not None:
                        raise RuntimeError(f"broker exited with {broker.returncode}")
                    t(uri, tmp)
                    passed += 1
                    print(f"ok   {t.__name__} ({time.time() - start:.1f} s)")
                except Exception:
                    failed += 1
                    print(f"FAIL {t.__name__}")
                    traceback.print_exc()
        finally:
            broker.terminate()
            broker.wait(timeout=10)
    print(f"perf: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
