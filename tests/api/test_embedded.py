"""SPEC section 1: the embedded default, its lifecycle, and verify --data."""
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import harness


def postgres_running(data_dir):
    pid_file = os.path.join(data_dir, "postmaster.pid")
    if not os.path.exists(pid_file):
        return False
    with open(pid_file) as f:
        pid = int(f.readline())
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def process_uids(pid):
    """The real, effective, saved and file-system uids of a process."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return [int(x) for x in line.split()[1:]]
    raise AssertionError("no Uid line for pid %d" % pid)


class Embedded(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ledgerd-embedded-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_first_start_restart_and_verify(self):
        data = os.path.join(self.dir, "ledger-data")
        # No --db and no --data: ./ledger-data under the working folder.
        d = harness.Ledgerd(cwd=self.dir, log_level="info")
        c = d.client()
        self.assertTrue(os.path.exists(os.path.join(data, "PG_VERSION")))
        self.assertEqual(os.stat(data).st_mode & 0o777, 0o700)
        self.assertTrue(os.path.exists(os.path.join(data, ".s.PGSQL.5432")))
        c.account("world", min_balance=None)
        c.account("w")
        self.assertEqual(c.transfer("e1", "world", "w", 42)[0], 201)
        self.assertEqual(d.terminate(signal.SIGTERM), 0, d.read_log())
        self.assertFalse(postgres_running(data))

        # A second start reuses the data.
        d2 = harness.Ledgerd(cwd=self.dir)
        self.assertEqual(d2.client().balance("w"), 42)
        self.assertEqual(d2.terminate(signal.SIGINT), 0, d2.read_log())
        self.assertFalse(postgres_running(data))

        # verify --data starts the cluster for the check and stops it again.
        p = subprocess.run([harness.LEDGERD, "verify", "--data", data], capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("verify: OK", p.stdout)
        self.assertFalse(postgres_running(data))
        os.unlink(d.log.name)
        os.unlink(d2.log.name)

    def test_postgres_killed_is_started_again(self):
        data = os.path.join(self.dir, "data")
        d = harness.Ledgerd(data=data)
        try:
            c = d.client()
            # Started as root, ledgerd serves as the cluster's user, which
            # must still be able to start postgres again below.
            owner = os.stat(data).st_uid if os.geteuid() == 0 else os.geteuid()
            self.assertNotEqual(owner, 0)
            self.assertEqual(process_uids(d.proc.pid), [owner] * 4)
            c.account("world", min_balance=None)
            c.account("a")
            self.assertEqual(c.transfer("before", "world", "a", 5)[0], 201)
            with open(os.path.join(data, "postmaster.pid")) as f:
                pid = int(f.readline())
            os.kill(pid, signal.SIGKILL)
            deadline = time.time() + 60
            status = None
            while time.time() < deadline:
                status, _ = c.transfer("after", "world", "a", 7)
                if status == 201:
                    break
                self.assertEqual(status, 503)
                time.sleep(0.2)
            self.assertEqual(status, 201, d.read_log())
            # A backend of the killed postmaster may serve that one before
            # it notices; once postgres is back, every request, on the
            # committer's and every read connection, is served.
            def restarted():
                try:
                    with open(os.path.join(data, "postmaster.pid")) as f:
                        return int(f.readline()) != pid and c.get("/healthz")[0] == 200
                except (OSError, ValueError):
                    return False
            while not restarted() and time.time() < deadline:
                time.sleep(0.1)
            self.assertTrue(restarted(), d.read_log())
            for i in range(12):
                status, body = c.transfer("after-%d" % i, "world", "a", 1)
                self.assertEqual(status, 201, body)
                self.assertEqual(c.get("/v1/accounts/a")[0], 200)
            self.assertIn("starting it again", d.read_log())
            self.assertTrue(postgres_running(data))
            self.assertEqual(c.get("/v1/transfers/before")[0], 200)
            self.assertEqual(c.balance("a"), 24)
            c.close()
            self.assertEqual(d.terminate(), 0, d.read_log())
            self.assertFalse(postgres_running(data))
        finally:
            d.stop()

    def postmaster_pid(self, data):
        with open(os.path.join(data, "postmaster.pid")) as f:
            return int(f.readline())

    def wait_healthy(self, d, seconds=60):
        deadline = time.time() + seconds
        while time.time() < deadline:
            try:
                if d.client().get("/healthz")[0] == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.1)
        return False

    def test_a_cluster_without_its_ledgerd_is_taken_over(self):
        """A postgres left running by a ledgerd killed with -9 is not used
        unsupervised: the next ledgerd stops it and runs its own, which it
        restarts when killed; a ledgerd using another's cluster takes it
        over when that one stops; the last one stops it."""
        data = os.path.join(self.dir, "data")
        a = harness.Ledgerd(data=data, log_level="info")
        c = a.client()
        c.account("world", min_balance=None)
        c.account("a")
        self.assertEqual(c.transfer("t1", "world", "a", 5)[0], 201)
        c.close()
        orphan = self.postmaster_pid(data)
        a.kill9()
        self.assertTrue(postgres_running(data))
        b = harness.Ledgerd(data=data, log_level="info")
        try:
            self.assertIn("left running", b.read_log())
            self.assertNotEqual(self.postmaster_pid(data), orphan)
            self.assertEqual(b.client().balance("a"), 5)
            # Now b's own child: killed, it is started again.
            os.kill(self.postmaster_pid(data), signal.SIGKILL)
            time.sleep(1)
            self.assertTrue(self.wait_healthy(b), b.read_log())
            self.assertIn("starting it again", b.read_log())
            # d uses b's cluster; when b stops it, d runs it.
            d = harness.Ledgerd(data=data, log_level="info")
            try:
                self.assertIn("another process runs", d.read_log())
                self.assertEqual(b.terminate(signal.SIGTERM), 0, b.read_log())
                self.assertTrue(self.wait_healthy(d), d.read_log())
                cd = d.client()
                self.assertEqual(cd.transfer("t2", "world", "a", 7)[0], 201, d.read_log())
                self.assertEqual(cd.balance("a"), 12)
                cd.close()
                self.assertIn("is gone; running it from here", d.read_log())
                # SIGHUP (a closed terminal) stops it as cleanly.
                self.assertEqual(d.terminate(signal.SIGHUP), 0, d.read_log())
                self.assertFalse(postgres_running(data))
            finally:
                d.stop()
        finally:
            b.stop()
            os.unlink(a.log.name)

    def test_a_postmaster_pid_naming_another_process_is_not_signalled(self):
        """The orphan is stopped only if the pid its postmaster.pid names
        works in the data folder: here it names this test's own process."""
        data = os.path.join(self.dir, "data")
        a = harness.Ledgerd(data=data)
        pid_file = os.path.join(data, "postmaster.pid")
        with open(pid_file) as f:
            lines = f.read().split("\n")
        orphan = int(lines[0])
        a.kill9()
        os.unlink(a.log.name)
        try:
            with open(pid_file, "w") as f:
                f.write("\n".join([str(os.getpid())] + lines[1:]))
            p = subprocess.run([harness.LEDGERD, "--data", data, "--listen",
                                "127.0.0.1:%d" % harness.free_port()],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("names no process", p.stderr)
            with open(pid_file, "w") as f:
                f.write("\n".join(lines))
            os.kill(orphan, 0)  # untouched
            b = harness.Ledgerd(data=data, log_level="info")
            self.assertIn("left running", b.read_log())
            self.assertEqual(b.terminate(), 0, b.read_log())
            os.unlink(b.log.name)
            self.assertFalse(postgres_running(data))
        finally:
            try:
                os.kill(orphan, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def test_sighup_is_ignored_when_started_ignoring_it(self):
        # nohup: the signal it means to discard must not stop ledgerd.
        port = harness.free_port()
        p = subprocess.Popen([harness.LEDGERD, "--db", harness.cluster().conninfo, "--listen",
                              "127.0.0.1:%d" % port], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL,
                             preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
        try:
            c = harness.Client(port, timeout=5)
            deadline = time.time() + 60
            while True:
                try:
                    if c.get("/healthz")[0] == 200:
                        break
                except OSError:
                    c.close()
                self.assertLess(time.time(), deadline)
                time.sleep(0.1)
            p.send_signal(signal.SIGHUP)
            time.sleep(1)
            self.assertIsNone(p.poll())
            self.assertEqual(c.get("/healthz")[0], 200)
            c.close()
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(30), 0)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()

    def test_a_folder_that_is_not_a_cluster_is_left_alone(self):
        # As root, a mistaken --data must not be given to the postgres user.
        junk = os.path.join(self.dir, "junk")
        os.mkdir(junk, 0o755)
        with open(os.path.join(junk, "file.txt"), "w") as f:
            f.write("mine\n")
        before = os.stat(junk)
        p = subprocess.run([harness.LEDGERD, "--data", junk, "--listen",
                            "127.0.0.1:%d" % harness.free_port()],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("not empty", p.stderr)
        after = os.stat(junk)
        self.assertEqual((after.st_mode, after.st_uid, after.st_gid),
                         (before.st_mode, before.st_uid, before.st_gid))
        self.assertEqual(os.listdir(junk), ["file.txt"])

    def test_cluster_gone_is_not_replaced_by_an_empty_one(self):
        # The folder disappears under a running ledgerd (a volume
        # unmounted) and postgres dies: ledgerd must not initdb a new, empty
        # ledger there, and must come back when the folder does.
        data = os.path.join(self.dir, "data")
        away = os.path.join(self.dir, "unmounted")
        d = harness.Ledgerd(data=data, log_level="info")
        try:
            c = d.client()
            c.account("world", min_balance=None)
            c.account("a")
            self.assertEqual(c.transfer("before", "world", "a", 5)[0], 201)
            with open(os.path.join(data, "postmaster.pid")) as f:
                pid = int(f.readline())
            os.rename(data, away)
            os.kill(pid, signal.SIGKILL)
            deadline = time.time() + 30
            while "not creating one" not in d.read_log() and time.time() < deadline:
                time.sleep(0.2)
            self.assertIn("not creating one", d.read_log())
            status, body = c.transfer("during", "world", "a", 7)
            self.assertEqual(status, 503, body)
            self.assertFalse(os.path.exists(data))

            os.rename(away, data)
            deadline = time.time() + 90
            while time.time() < deadline:
                status, body = c.transfer("during", "world", "a", 7)
                if status == 201:
                    break
                self.assertEqual(status, 503, body)
                time.sleep(0.5)
            self.assertEqual(status, 201, d.read_log())
            self.assertEqual(c.get("/v1/transfers/before")[0], 200)
            self.assertEqual(c.balance("a"), 12)
            c.close()
            self.assertEqual(d.terminate(), 0, d.read_log())
        finally:
            d.stop()

    def test_db_and_data_together_are_refused(self):
        # One of them would be ignored: another ledger than the one meant.
        for argv in ([harness.LEDGERD, "--db", harness.cluster().conninfo, "--data", self.dir],
                     [harness.LEDGERD, "verify", "--db", harness.cluster().conninfo,
                      "--data", self.dir]):
            p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
            self.assertIn("not both", p.stderr)

    def test_verify_where_there_is_no_ledger(self):
        # A folder without a cluster, missing or empty: an error, and no
        # cluster is created there.
        for data in (os.path.join(self.dir, "missing"), self.dir):
            p = subprocess.run([harness.LEDGERD, "verify", "--data", data],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
            self.assertIn("holds no PostgreSQL cluster", p.stderr)
            self.assertFalse(os.path.exists(os.path.join(data, "PG_VERSION")))
        # A database without the ledger schema.
        pg = harness.cluster()
        pg.reset()
        rc, out = harness.verify(pg.conninfo)
        self.assertEqual(rc, 2, out)
        self.assertIn("holds no ledger", out)

    def test_created_cluster_settings(self):
        data = os.path.join(self.dir, "data")
        d = harness.Ledgerd(data=data)
        try:
            self.assertEqual(d.client().get("/healthz")[0], 200)
            # Written to postgresql.conf, where the owner can change them.
            with open(os.path.join(data, "postgresql.conf")) as f:
                conf = f.read()
            self.assertIn("\nwal_init_zero = off\n", conf)
            self.assertIn("\nwal_sync_method = open_datasync\n", conf)
            self.assertRegex(conf, r"\nshared_buffers = \d+MB\n")
            self.assertIn("\nmax_connections = 200\n", conf)
            conninfo = "host=%s dbname=postgres user=ledgerd" % data

            def show(name):
                p = subprocess.run(["psql", conninfo, "-XAtqc", "SHOW " + name],
                                   capture_output=True, text=True, timeout=30)
                self.assertEqual(p.returncode, 0, p.stderr)
                return p.stdout.strip()

            self.assertEqual(show("wal_init_zero"), "off")
            self.assertEqual(show("wal_sync_method"), "open_datasync")
            self.assertEqual(show("max_connections"), "200")
            # A quarter of memory, and never below PostgreSQL's own default.
            buffers = show("shared_buffers")
            self.assertRegex(buffers, r"^\d+[MG]B$")
            mb = int(buffers[:-2]) * (1024 if buffers.endswith("GB") else 1)
            self.assertGreaterEqual(mb, 128)
            total_mb = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") >> 20
            self.assertLessEqual(mb, total_mb // 4 + 1)
            # Every query ledgerd runs is prepared before its first use: a
            # missing statement is not an ERROR in the DBA's log.
            c = d.client()
            c.account("world", min_balance=None)
            c.account("a")
            self.assertEqual(c.transfer("t", "world", "a", 3)[0], 201)
            for path in ("/v1/accounts/a", "/v1/accounts/a/balance",
                         "/v1/accounts/a/balance?at=2030-01-01T00:00:00Z",
                         "/v1/accounts/a/entries", "/v1/transfers/t"):
                self.assertEqual(c.get(path)[0], 200, path)
            time.sleep(0.5)  # the expiry sweeper's first rounds
            with open(os.path.join(data, "postgres.log"), errors="replace") as f:
                pg_log = f.read()
            self.assertNotIn("ERROR", pg_log)
            self.assertEqual(show("fsync"), "on")
            self.assertEqual(show("synchronous_commit"), "on")
            self.assertEqual(show("full_page_writes"), "on")
        finally:
            d.stop()

    def test_cluster_has_no_tcp_socket(self):
        data = os.path.join(self.dir, "data")
        d = harness.Ledgerd(data=data)
        try:
            self.assertEqual(d.client().get("/healthz")[0], 200)
            # The cluster has no TCP socket: only its Unix socket in the folder.
            with open(os.path.join(data, "postmaster.pid")) as f:
                lines = f.read().splitlines()
            self.assertEqual(lines[4], data)  # socket directory
            self.assertEqual(lines[5].strip(), "")  # listen_addresses: none
        finally:
            d.stop()
