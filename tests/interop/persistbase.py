"""A ringmq that a test can stop and start again on the same data directory
(SIGTERM or SIGKILL), for the persistence and crash tests.  It reuses
harness.RingmqBroker for everything but the data directory, which lives for
the whole test class."""

import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402


class RestartableBroker(harness.RingmqBroker):

    def start(self):
        if self.tmp is None:
            super().start()
            return
        # Again, on the same directory and port (the port may be taken: retry others).
        data_dir = os.path.join(self.tmp, "data")
        for _attempt in range(3):
            cmd = self.command(data_dir)
            self.cmd = cmd
            self.out = open(os.path.join(self.tmp, "stdout-stderr.txt"), "ab")
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.out,
                                         stderr=subprocess.STDOUT)
            if harness.wait_port(self.host, self.port, 30.0, self.proc) and self._serving(30.0):
                return
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
            self.out.close()
            self.port = harness.find_free_port()
        raise RuntimeError("ringmq did not restart: %s\n%s" % (" ".join(self.cmd), self.diagnostics()))

    def _serves_once(self):
        try:
            with socket.create_connection((self.host, self.port), timeout=2.0) as sk:
                sk.sendall(harness.PROTOCOL_HEADER)
                data = sk.recv(7)
                return len(data) == 7 and data[0] == harness.FRAME_METHOD
        except OSError:
            return False

    def _serving(self, timeout):
        """A killed process's listening sockets outlive it for a moment (its
        io_uring is torn down after it exits) and take connections that are
        then reset: wait until several connections in a row get
        connection.start from the new process."""
        deadline = time.monotonic() + timeout
        good = 0
        while time.monotonic() < deadline and self.proc.poll() is None:
            good = good + 1 if self._serves_once() else 0
            if good >= 5:
                return True
            time.sleep(0.02)
        return False

    def kill(self):
        """SIGKILL: the crash."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.out.close()

    def clean_stop(self):
        """SIGTERM and wait for exit status 0, keeping the data directory."""
        status, _ = self.terminate(timeout=10.0)
        self.out.close()
        if status != 0:
            raise AssertionError("ringmq exited with %r\n%s" % (status, self.diagnostics()))

    def restart(self, crash=False):
        if crash:
            self.kill()
        else:
            self.clean_stop()
        self.start()


class PersistTestCase(harness.BrokerTestCase):
    """A test class whose broker can be restarted on its data directory."""

    timeout = 60
    broker_class = RestartableBroker

    @classmethod
    def setUpClass(cls):
        if harness.external_url():
            raise harness.unittest.SkipTest("needs control over the ringmq process")
        binary = harness.ringmq_binary()
        if binary is None:
            raise harness.unittest.SkipTest("no broker: set RINGMQ_BIN")
        cls.broker = cls.broker_class(binary, cls.ringmq_args, cls.shards)
        cls.broker.start()
