"""Test harness: a private PostgreSQL cluster, ledgerd processes, HTTP.

Python standard library only. Every test talks to real processes: a
PostgreSQL cluster started here (initdb + pg_ctl on a Unix socket in a
temporary folder) and build/ledgerd started with --db.
"""
import glob
import http.client
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LEDGERD = os.environ.get("LEDGERD", os.path.join(ROOT, "build", "ledgerd"))


def pg_bindir():
    try:
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True)
        d = out.stdout.strip()
        if os.path.exists(os.path.join(d, "initdb")):
            return d
    except (OSError, subprocess.CalledProcessError):
        pass
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    if not dirs:
        raise RuntimeError("PostgreSQL server programs not found")
    return dirs[-1]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A private PostgreSQL cluster on a Unix socket, run as an unprivileged
    user when the tests run as root."""

    def __init__(self, options="-c max_connections=300"):
        self.options = options
        self.dir = tempfile.mkdtemp(prefix="ledgerd-test-pg-")
        os.chmod(self.dir, 0o755)
        self.data = os.path.join(self.dir, "data")
        self.bindir = pg_bindir()
        self.user = None
        if os.geteuid() == 0:
            self.user = "postgres"
            pwd.getpwnam(self.user)
            shutil.chown(self.dir, self.user)
        self._run([os.path.join(self.bindir, "initdb"), "-D", self.data, "-A", "trust",
                   "-U", "ledgerd", "-E", "UTF8", "--locale=C", "-N"], quiet=True)
        self.start()
        self.conninfo = "host=%s port=5432 dbname=postgres user=ledgerd" % self.dir

    def _run(self, argv, quiet=False, check=True):
        if self.user:
            argv = ["runuser", "-u", self.user, "--"] + argv
        return subprocess.run(argv, check=check, stdout=subprocess.DEVNULL if quiet else None,
                              stderr=subprocess.DEVNULL if quiet else None)

    def start(self):
        self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-w", "-l",
                   os.path.join(self.dir, "postgres.log"), "-o",
                   "-k %s -c listen_addresses='' %s" % (self.dir, self.options), "start"],
                  quiet=True)

    def stop(self, mode="fast"):
        self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-m", mode, "-w",
                   "stop"], quiet=True, check=False)

    def psql(self, sql, check=True):
        """Runs sql; returns (returncode, stdout, stderr)."""
        p = subprocess.run(["psql", self.conninfo, "-v", "ON_ERROR_STOP=1", "-XAtq", "-c", sql],
                           capture_output=True, text=True)
        if check and p.returncode != 0:
            raise AssertionError("psql failed: %s" % p.stderr)
        return p.returncode, p.stdout.strip(), p.stderr.strip()

    def reset(self):
        """A fresh, empty ledger schema for the next test group."""
        self.psql("DROP SCHEMA IF EXISTS ledger CASCADE")

    def destroy(self):
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class Ledgerd:
    """One ledgerd process serving HTTP on a free loopback port."""

    def __init__(self, db=None, data=None, extra=(), cwd=None, log_level="warn", env=None):
        self.port = free_port()
        self.argv = [LEDGERD, "--listen", "127.0.0.1:%d" % self.port, "--log-level", log_level]
        if db:
            self.argv += ["--db", db]
        if data:
            self.argv += ["--data", data]
        self.argv += list(extra)
        self.cwd = cwd
        self.env = dict(os.environ, **(env or {}))
        self.log = tempfile.NamedTemporaryFile(prefix="ledgerd-log-", suffix=".txt", delete=False)
        self.proc = None
        self.start()

    def start(self, timeout=60):
        self.proc = subprocess.Popen(self.argv, stdout=self.log, stderr=self.log, cwd=self.cwd,
                                     env=self.env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("ledgerd exited with %s:\n%s" % (self.proc.returncode,
                                                                     self.read_log()))
            try:
                status, _ = Client(self.port).get("/healthz")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("ledgerd did not become healthy:\n" + self.read_log())

    def read_log(self):
        with open(self.log.name, errors="replace") as f:
            return f.read()

    def terminate(self, sig=signal.SIGTERM, timeout=30):
        """Sends sig and returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def kill9(self):
        self.proc.kill()
        self.proc.wait(10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.terminate()
        os.unlink(self.log.name)

    def client(self, token=None, timeout=30):
        return Client(self.port, token, timeout)


class Client:
    """A keep-alive HTTP/1.1 JSON client (one per thread)."""

    def __init__(self, port, token=None, timeout=30):
        self.port = port
        self.token = token
        self.timeout = timeout
        self.conn = None
        # Retry once on a new connection when the server reset a keep-alive
        # one; tests of a clean shutdown turn this off to see each reset.
        self.retry_reset = True

    def request(self, method, path, body=None, raw=None, headers=None):
        hdrs = {"Content-Type": "application/json"}
        if self.token:
            hdrs["Authorization"] = "Bearer " + self.token
        hdrs.update(headers or {})
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=data, headers=hdrs)
                resp = self.conn.getresponse()
                text = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self.close()
                self.last_headers = dict(resp.getheaders())
                ctype = resp.getheader("Content-Type", "")
                if ctype.startswith("application/json"):
                    return resp.status, json.loads(text)
                return resp.status, text.decode(errors="replace")
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # A keep-alive connection the server closed: retry once on a new one.
                self.close()
                if attempt == 1 or not self.retry_reset:
                    raise
        raise AssertionError("unreachable")

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, body=None, raw=None, headers=None):
        return self.request("POST", path, body=body, raw=raw, headers=headers)

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None

    # Conveniences
    def account(self, id, currency="USD", **kw):
        body = {"id": id, "currency": currency}
        body.update(kw)
        status, resp = self.post("/v1/accounts", body)
        assert status in (200, 201), (status, resp)
        return resp

    def transfer(self, id, frm, to, amount, **kw):
        body = {"id": id, "from": frm, "to": to, "amount": amount}
        body.update(kw)
        return self.post("/v1/transfers", body)

    def balance(self, id):
        status, resp = self.get("/v1/accounts/" + urllib.parse.quote(id))
        assert status == 200, (status, resp)
        return int(resp["balance"])

    def entries(self, id):
        out, after = [], 0
        while True:
            status, resp = self.get("/v1/accounts/%s/entries?after_seq=%d&limit=10000" % (id, after))
            assert status == 200, (status, resp)
            out += resp["entries"]
            if resp["next_after_seq"] is None:
                return out
            after = resp["next_after_seq"]


class LedgerdTestCase(unittest.TestCase):
    """One ledgerd on a fresh ledger schema of the shared cluster per class."""

    @classmethod
    def setUpClass(cls):
        cluster().reset()
        cls.ledgerd = Ledgerd(db=cluster().conninfo)
        cls.c = cls.ledgerd.client()

    @classmethod
    def tearDownClass(cls):
        cls.c.close()
        cls.ledgerd.stop()

    def uid(self, suffix=""):
        """An id unique to the running test method."""
        name = self._testMethodName[len("test_"):][:40]
        return name + ("." + suffix if suffix else "")

    def assert_error(self, status, body, http_status, code, what=""):
        """A SPEC error: this HTTP status, this code and a message."""
        self.assertEqual(status, http_status, "%s: %r" % (what, body))
        self.assertIsInstance(body, dict, what)
        self.assertEqual(body.get("error"), code, "%s: %r" % (what, body))
        self.assertIsInstance(body.get("message"), str, what)
        self.assertTrue(body["message"].strip(), "%s: empty message" % what)


def token_file(text):
    """A temporary file holding text, for --token-file; the caller unlinks it."""
    fd, path = tempfile.mkstemp(prefix="ledgerd-tokens-")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def verify(db):
    """Runs `ledgerd verify --db`; returns (exit code, output)."""
    p = subprocess.run([LEDGERD, "verify", "--db", db], capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout + p.stderr


_cluster = None


def cluster():
    """The cluster shared by all test modules of one run."""
    global _cluster
    if _cluster is None:
        _cluster = Cluster()
    return _cluster


def shutdown():
    if _cluster is not None:
        _cluster.destroy()
