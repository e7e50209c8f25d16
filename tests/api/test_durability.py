"""Crashes, outages, the insert-only journal, migrations and verify."""
import http.client
import json
import os
import signal
import subprocess
import threading
import time
import unittest

import harness


class InsertOnlyJournal(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = harness.cluster()
        cls.pg.reset()
        cls.d = harness.Ledgerd(db=cls.pg.conninfo)
        c = cls.d.client()
        c.account("world", min_balance=None)
        c.account("a")
        assert c.transfer("t1", "world", "a", 5)[0] == 201

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def refused(self, sql, reason="insert-only"):
        rc, _, err = self.pg.psql(sql, check=False)
        self.assertNotEqual(rc, 0, sql)
        self.assertIn(reason, err)

    def test_update_delete_truncate_refused_for_superuser(self):
        # The test cluster's user is a superuser: even it is refused.
        _, su, _ = self.pg.psql("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        self.assertEqual(su, "t")
        self.refused("UPDATE ledger.entries SET amount = 0")
        self.refused("DELETE FROM ledger.entries")
        self.refused("TRUNCATE ledger.entries")
        self.refused("UPDATE ledger.transfers SET amount = 1")
        self.refused("DELETE FROM ledger.transfers")
        self.refused("TRUNCATE ledger.transfers")
        self.refused("TRUNCATE ledger.transfers CASCADE")
        _, n, _ = self.pg.psql("SELECT count(*) FROM ledger.entries")
        self.assertEqual(n, "2")

    def test_refused_in_replica_sessions_too(self):
        # Ordinary triggers do not fire when a superuser's session says it
        # replays replication; the journal's fire always.
        for sql in ("UPDATE ledger.entries SET amount = 0", "DELETE FROM ledger.transfers",
                    "TRUNCATE ledger.entries"):
            self.refused("SET session_replication_role = replica; " + sql)
        _, n, _ = self.pg.psql("SELECT count(*) FROM ledger.entries")
        self.assertEqual(n, "2")

    def test_verify_names_violations(self):
        rc, out = harness.verify(self.pg.conninfo)
        self.assertEqual(rc, 0, out)
        # Tamper as a superuser can (triggers off), then verify must object.
        self.pg.psql("BEGIN; ALTER TABLE ledger.entries DISABLE TRIGGER entries_insert_only;"
                     " UPDATE ledger.entries SET balance = balance + 1 WHERE seq = 1;"
                     " UPDATE ledger.accounts SET balance = balance + 7 WHERE ext_id = 'a';"
                     " ALTER TABLE ledger.entries ENABLE ALWAYS TRIGGER entries_insert_only; COMMIT")
        rc, out = harness.verify(self.pg.conninfo)
        self.assertEqual(rc, 1, out)
        self.assertIn("figures differ from previous entry", out)
        self.assertIn("currency does not balance", out)
        self.pg.psql("ALTER TABLE ledger.entries DISABLE TRIGGER entries_insert_only")
        rc, out = harness.verify(self.pg.conninfo)
        self.assertEqual(rc, 1, out)
        self.assertIn("insert-only trigger missing or not firing always: entries_insert_only", out)
        self.pg.psql("ALTER TABLE ledger.entries ENABLE TRIGGER entries_insert_only")
        rc, out = harness.verify(self.pg.conninfo)
        self.assertEqual(rc, 1, out)
        self.assertIn("insert-only trigger missing or not firing always: entries_insert_only", out)
        self.pg.psql("ALTER TABLE ledger.entries ENABLE ALWAYS TRIGGER entries_insert_only")


class JournalReadsRelyOn(unittest.TestCase):
    """What the reads rely on in the journal, and verify catching it broken:
    each entry's copy of its transfer's client id (migration 4; entries
    written before it have NULL there), and effective_at never going back
    along an account's seq (balance?at= searches by seq)."""

    def setUp(self):
        self.pg = harness.cluster()
        self.pg.reset()
        self.d = harness.Ledgerd(db=self.pg.conninfo)
        self.c = self.d.client()
        self.c.account("world", min_balance=None)
        self.c.account("a")
        for i in range(3):
            self.assertEqual(self.c.transfer("x%d" % i, "world", "a", 5)[0], 201)

    def tearDown(self):
        self.d.stop()

    def tamper(self, set_clause, where="true"):
        self.pg.psql("BEGIN; ALTER TABLE ledger.entries DISABLE TRIGGER entries_insert_only;"
                     " UPDATE ledger.entries SET %s WHERE %s;"
                     " ALTER TABLE ledger.entries ENABLE ALWAYS TRIGGER entries_insert_only; COMMIT"
                     % (set_clause, where))

    def test_written_and_read_back(self):
        _, rows, _ = self.pg.psql("SELECT e.transfer_ext_id FROM ledger.entries e"
                                  " JOIN ledger.accounts a ON a.id = e.account_id"
                                  " WHERE a.ext_id = 'a' ORDER BY e.seq")
        self.assertEqual(rows.split("\n"), ["x0", "x1", "x2"])
        self.assertEqual([e["transfer_id"] for e in self.c.entries("a")], ["x0", "x1", "x2"])

    def test_entries_from_before_the_migration(self):
        self.tamper("transfer_ext_id = NULL", "seq <> 2")
        self.assertEqual([e["transfer_id"] for e in self.c.entries("a")], ["x0", "x1", "x2"])
        rc, out = harness.verify(self.pg.conninfo)
        self.assertEqual(rc, 0, out)

    def test_verify_objects_to_a_wrong_copy(self):
        self.tamper("transfer_ext_id = 'x0'", "transfer_ext_id = 'x1'")
        rc, out = harness.verify(self.pg.conninfo)
        self.assertEqual(rc, 1, out)
        self.assertIn("entry naming another transfer's id", out)

    def test_verify_objects_to_effective_at_going_back(self):
        self.tamper("effective_at = '2000-01-01T00:00:00Z'", "transfer_ext_id = 'x1'")
        rc, out = harness.verify(self.pg.conninfo)
        self.assertEqual(rc, 1, out)
        self.assertIn("seq 2: effective_at earlier than the entry before", out)

    def test_verify_objects_to_a_wrong_last_effective_at(self):
        # balance?at= answers a time at or after it without searching.
        self.c.account("empty")
        rc, out = harness.verify(self.pg.conninfo)
        self.assertEqual(rc, 0, out)
        self.pg.psql("UPDATE ledger.accounts SET last_effective_at ="
                     " last_effective_at - interval '1 microsecond' WHERE ext_id = 'a';"
                     "UPDATE ledger.accounts SET last_effective_at = now() WHERE ext_id = 'empty'")
        rc, out = harness.verify(self.pg.conninfo)
        self.assertEqual(rc, 1, out)
        self.assertIn("account a: stored last_effective_at differs from its last entry's", out)
        self.assertIn("account empty: stored last_effective_at differs from its last entry's", out)
        self.assertNotIn("account world:", out)


class VerifyFloors(unittest.TestCase):
    """Invariant 2 with a positive min_balance: a credit may leave an account
    below its floor (higher than before); a debit never takes it there."""

    def test_credits_below_a_positive_floor_are_sound_debits_are_not(self):
        pg = harness.cluster()
        pg.reset()
        d = harness.Ledgerd(db=pg.conninfo)
        try:
            c = d.client()
            c.account("world", min_balance=None)
            c.account("p", min_balance="100")
            self.assertEqual(c.transfer("in1", "world", "p", 50)[0], 201)
            status, body = c.transfer("out0", "p", "world", 1)
            self.assertEqual((status, body["error"]), (422, "insufficient_funds"))
            self.assertEqual(c.transfer("in2", "world", "p", 100)[0], 201)
            self.assertEqual(c.transfer("out1", "p", "world", 50)[0], 201)
            rc, out = harness.verify(pg.conninfo)
            self.assertEqual(rc, 0, out)
            # A floor raised behind ledgerd's back: only the debit (seq 3,
            # 150 -> 100) went below 120; the credits before it rose.
            pg.psql("UPDATE ledger.accounts SET min_balance = 120 WHERE ext_id = 'p'")
            rc, out = harness.verify(pg.conninfo)
            self.assertEqual(rc, 1, out)
            self.assertIn("account p seq 3: available below min_balance", out)
            self.assertNotIn("seq 1: available", out)
            self.assertNotIn("seq 2: available", out)
        finally:
            d.stop()


class Migrations(unittest.TestCase):
    def test_two_processes_migrate_at_once(self):
        pg = harness.cluster()
        pg.reset()
        procs = []
        threads = [threading.Thread(target=lambda: procs.append(harness.Ledgerd(db=pg.conninfo)))
                   for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        try:
            self.assertEqual(len(procs), 3)
            _, rows, _ = pg.psql("SELECT count(*), count(DISTINCT version) FROM"
                                 " ledger.schema_migrations")
            n, distinct = rows.split("|")
            self.assertEqual(n, distinct)
            for p in procs:
                self.assertEqual(p.client().get("/healthz")[0], 200)
        finally:
            for p in procs:
                p.stop()


def load(servers, prefix, stop, answered, lock, n_threads=16, refused=None, resets=None):
    """Transfers of 1 from funded payers until stop is set; records 2xx (and
    503s in refused, and the ids of requests whose connection was reset or
    closed unanswered in resets, if given)."""

    def worker(i):
        cl = servers[i % len(servers)].client()
        cl.timeout = 10
        cl.retry_reset = resets is None
        k = 0
        while not stop.is_set():
            tid = "%s-%d-%d" % (prefix, i, k)
            k += 1
            try:
                status, resp = cl.transfer(tid, "payer-%d" % i, "merchant", 1)
            except (OSError, ValueError) as e:
                # Refused or cut off: nothing is known of the request. A cut
                # (not a refusal) is recorded where resets are kept.
                cut = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)
                if resets is not None and isinstance(e, cut):
                    with lock:
                        resets.append(tid)
                cl.close()
                time.sleep(0.05)
                continue
            if status in (200, 201):
                with lock:
                    answered[tid] = resp
            elif status != 503:
                raise AssertionError((status, resp))
            elif refused is not None:
                with lock:
                    refused[tid] = resp
        cl.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    return threads


class Crashes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = harness.cluster()
        cls.pg.reset()
        d = harness.Ledgerd(db=cls.pg.conninfo)
        c = d.client()
        c.account("world", min_balance=None)
        c.account("merchant")
        for i in range(16):
            c.account("payer-%d" % i)
            assert c.transfer("fund-%d" % i, "world", "payer-%d" % i, 10 ** 9)[0] == 201
        d.stop()

    def check_answered(self, client, answered):
        """Every 2xx answer is in the journal with the figures it gave."""
        self.assertGreater(len(answered), 0)
        for tid, resp in answered.items():
            status, got = client.get("/v1/transfers/" + tid)
            self.assertEqual(status, 200, tid)
            for k in ("from_seq", "to_seq", "from_balance", "to_balance", "amount"):
                self.assertEqual(got[k], resp[k], (tid, k))

    def test_sigterm_under_load(self):
        # SPEC: stop accepting, finish or fail in-flight requests cleanly,
        # exit 0. Every request sent is answered (committed, or 503 and
        # applied nothing), never cut off by a reset; new connections are
        # refused. Every answer is then either committed or applied nothing.
        a = harness.Ledgerd(db=self.pg.conninfo)
        stop, lock, answered, refused, resets = threading.Event(), threading.Lock(), {}, {}, []
        threads = load([a], "term", stop, answered, lock, refused=refused, resets=resets)
        time.sleep(1.5)
        self.assertEqual(a.terminate(signal.SIGTERM, timeout=30), 0, a.read_log())
        stop.set()
        for t in threads:
            t.join()
        self.assertEqual(resets, [], "requests cut off by the shutdown")
        b = harness.Ledgerd(db=self.pg.conninfo)
        try:
            c = b.client()
            self.check_answered(c, answered)
            for tid, resp in refused.items():
                self.assertEqual(resp["error"], "unavailable", resp)
                self.assertIn("nothing was applied", resp["message"])
                self.assertEqual(c.get("/v1/transfers/" + tid)[0], 404, tid)
            rc, out = harness.verify(self.pg.conninfo)
            self.assertEqual(rc, 0, out)
        finally:
            b.stop()
            os.unlink(a.log.name)

    def test_kill9_ledgerd_under_load(self):
        a = harness.Ledgerd(db=self.pg.conninfo)
        stop, lock, answered = threading.Event(), threading.Lock(), {}
        threads = load([a], "k9", stop, answered, lock)
        time.sleep(1.5)
        a.kill9()
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join()
        b = harness.Ledgerd(db=self.pg.conninfo)
        try:
            c = b.client()
            self.check_answered(c, answered)
            rc, out = harness.verify(self.pg.conninfo)
            self.assertEqual(rc, 0, out)
            # Retrying an answered id is a replay, never a second transfer.
            tid = sorted(answered)[0]
            i = int(tid.split("-")[1])
            status, resp = c.transfer(tid, "payer-%d" % i, "merchant", 1)
            self.assertEqual(status, 200)
            self.assertTrue(resp["replayed"])
        finally:
            b.stop()
            os.unlink(a.log.name)

    def test_sessions_closed_while_idle(self):
        # PostgreSQL closing ledgerd's idle sessions (a restart, a failover,
        # idle_session_timeout): the next requests are served on new
        # sessions, every one of them, not after a failure each.
        a = harness.Ledgerd(db=self.pg.conninfo)
        try:
            c = a.client()
            for i in range(8):
                self.assertEqual(c.transfer("idle-w%d" % i, "payer-0", "merchant", 1)[0], 201)
                self.assertEqual(c.get("/v1/accounts/merchant")[0], 200)
            _, n, _ = self.pg.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                                   " WHERE application_name = 'ledgerd'")
            self.assertGreaterEqual(int(n), 3)
            time.sleep(0.5)
            for i in range(20):
                status, body = c.transfer("idle-a%d" % i, "payer-0", "merchant", 1)
                self.assertEqual(status, 201, body)
                status, body = c.get("/v1/transfers/idle-a%d" % i)
                self.assertEqual(status, 200, body)
        finally:
            a.stop()

    def test_postgres_crash_and_outage(self):
        a = harness.Ledgerd(db=self.pg.conninfo)
        b = harness.Ledgerd(db=self.pg.conninfo)
        stop, lock, answered = threading.Event(), threading.Lock(), {}
        threads = load([a, b], "pgcrash", stop, answered, lock)
        try:
            time.sleep(1.0)
            self.pg.stop("immediate")  # a crash: no checkpoint, WAL replay on start
            time.sleep(0.5)
            c = a.client()
            started = time.time()
            status, resp = c.transfer("during-outage", "payer-0", "merchant", 1)
            self.assertEqual(status, 503, resp)
            self.assertEqual(resp["error"], "unavailable")
            self.assertIn("Retry-After", c.last_headers)
            self.assertLess(time.time() - started, 10)
            self.assertEqual(c.get("/healthz")[0], 503)
            self.assertEqual(c.get("/v1/accounts/merchant")[0], 503)
            self.pg.start()
            deadline = time.time() + 20
            while time.time() < deadline and c.get("/healthz")[0] != 200:
                time.sleep(0.2)
            self.assertEqual(c.get("/healthz")[0], 200)
            time.sleep(1.0)
            stop.set()
            for t in threads:
                t.join()
            # The refused transfer was not applied; it can be sent again.
            self.assertEqual(c.get("/v1/transfers/during-outage")[0], 404)
            self.assertEqual(c.transfer("during-outage", "payer-0", "merchant", 1)[0], 201)
            self.check_answered(c, answered)
            rc, out = harness.verify(self.pg.conninfo)
            self.assertEqual(rc, 0, out)
        finally:
            stop.set()
            a.stop()
            b.stop()


class PlansLedgerdUses(unittest.TestCase):
    """ledgerd's own (generic, cached) plans: made while the journal was
    empty, they must still be index probes once it has grown, without any
    ANALYZE (autovacuum is off here), because ledgerd drops its plans every
    PLAN_REFRESH_NS (10 s). auto_explain logs every plan ledgerd runs."""

    @classmethod
    def setUpClass(cls):
        cls.pg = harness.Cluster("-c max_connections=50 -c autovacuum=off"
                                 " -c session_preload_libraries=auto_explain"
                                 " -c auto_explain.log_min_duration=0"
                                 " -c auto_explain.log_analyze=on -c auto_explain.log_format=json")
        cls.d = harness.Ledgerd(db=cls.pg.conninfo)

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.pg.destroy()

    def plans_since(self, offset):
        with open(os.path.join(self.pg.dir, "postgres.log")) as f:
            f.seek(offset)
            text = f.read()
        plans, decoder = [], json.JSONDecoder()
        for part in text.split(" plan:")[1:]:
            start = part.find("{")
            plans.append(decoder.raw_decode(part[start:].replace("\n\t", "\n"))[0])
        return plans

    def entries_scans(self, node, out):
        if node.get("Relation Name") == "entries" and "Scan" in node["Node Type"]:
            out.append(node)
        for child in node.get("Plans", []):
            self.entries_scans(child, out)
        return out

    def test_plans_stay_index_probes_as_the_journal_grows(self):
        c = self.d.client(timeout=120)
        c.account("world", min_balance=None)
        c.account("long")
        at = lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 2))
        # First plans, made on empty tables. The test means something only
        # if one of them scans the journal: PostgreSQL 15 makes such a plan
        # for the committers' load of existing transfers.
        for i in range(4):
            self.assertEqual(c.transfer("first-%d" % i, "world", "long", 1)[0], 201)
            self.assertEqual(c.get("/v1/accounts/long/entries?after_seq=0&limit=10")[0], 200)
            self.assertEqual(c.get("/v1/accounts/long/balance?at=" + at())[0], 200)
        first = []
        for plan in self.plans_since(0):
            first += self.entries_scans(plan["Plan"], [])
        self.assertIn("Seq Scan", [scan["Node Type"] for scan in first])
        for b in range(2):
            items = [{"id": "grow-%d-%d" % (b, i), "from": "world", "to": "long", "amount": 1}
                     for i in range(8190)]
            status, _ = c.post("/v1/transfers/batch", {"transfers": items, "atomic": True})
            self.assertEqual(status, 200)
            if b == 0:
                # A whole second after the first batch and before the second:
                # the balance then is in the middle of the history.
                time.sleep(1.1)
                between = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                time.sleep(1.1)
        time.sleep(10.5)
        offset = os.path.getsize(os.path.join(self.pg.dir, "postgres.log"))
        for i in range(4):
            status, resp = c.get("/v1/accounts/long/entries?after_seq=8000&limit=100")
            self.assertEqual((status, len(resp["entries"])), (200, 100))
            status, resp = c.get("/v1/accounts/long/balance?at=" + at())
            self.assertEqual((status, resp["balance"]), (200, str(16384 + i)))
            status, resp = c.get("/v1/accounts/long/balance?at=" + between)
            self.assertEqual((status, resp["balance"], resp["seq"]), (200, "8194", 8194))
            self.assertEqual(c.transfer("last-%d" % i, "world", "long", 1)[0], 201)
        scans = []
        for plan in self.plans_since(offset):
            scans += self.entries_scans(plan["Plan"], [])
        self.assertGreaterEqual(len(scans), 12)
        for scan in scans:
            self.assertNotEqual(scan["Node Type"], "Seq Scan", scan)
            # Rows are per loop: the search probes once per step.
            self.assertLessEqual(scan["Actual Rows"] * scan["Actual Loops"], 101, scan)


def postgres_pids(pg):
    """The postmaster of the test cluster and all its children."""
    with open(os.path.join(pg.data, "postmaster.pid")) as f:
        postmaster = int(f.readline())
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(postmaster)], capture_output=True,
                         text=True).stdout.split()
    return [postmaster] + [int(p) for p in out]


class BackPressure(unittest.TestCase):
    def test_full_queue_answers_503_and_applies_nothing(self):
        pg = harness.cluster()
        pg.reset()
        d = harness.Ledgerd(db=pg.conninfo)
        c = d.client()
        c.account("world", min_balance=None)
        c.account("bp")
        pids = postgres_pids(pg)
        results = []
        lock = threading.Lock()

        def send(i):
            items = [{"id": "bp-%d-%d" % (i, k), "from": "world", "to": "bp", "amount": 1}
                     for k in range(8190)]
            cl = d.client()
            cl.timeout = 120
            status, resp = cl.post("/v1/transfers/batch", {"transfers": items, "atomic": True})
            with lock:
                results.append((i, status, resp, dict(cl.last_headers)))
            cl.close()

        try:
            # A stalled database: the committer waits, the queue (100,000
            # transfers) fills up.
            for pid in pids:
                os.kill(pid, signal.SIGSTOP)
            threads = [threading.Thread(target=send, args=(i,)) for i in range(16)]
            for t in threads:
                t.start()
            deadline = time.time() + 30
            while time.time() < deadline and not any(r[1] == 503 for r in results):
                time.sleep(0.1)
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGCONT)
        for t in threads:
            t.join()
        refused = [r for r in results if r[1] == 503]
        accepted = [r for r in results if r[1] == 200]
        self.assertGreater(len(refused), 0)
        self.assertEqual(len(refused) + len(accepted), 16, [r[:2] for r in results])
        for _, _, resp, headers in refused:
            self.assertEqual(resp["error"], "unavailable")
            self.assertIn("Retry-After", headers)
        # Refused batches applied nothing; accepted ones applied whole.
        for i, status, resp, _ in results:
            status_get, _ = c.get("/v1/transfers/bp-%d-0" % i)
            self.assertEqual(status_get, 200 if status == 200 else 404, i)
        self.assertEqual(c.balance("bp"), 8190 * len(accepted))
        rc, out = harness.verify(pg.conninfo)
        self.assertEqual(rc, 0, out)
        d.stop()


class CommitOutcome(unittest.TestCase):
    def test_connection_lost_after_commit_sent(self):
        """The connection breaks right after COMMIT is sent (injected fault):
        ledgerd looks the batch up before answering, and answers what
        happened: committed, once."""
        pg = harness.cluster()
        pg.reset()
        d = harness.Ledgerd(db=pg.conninfo, log_level="info", env={"LEDGERD_FAULT": "commit_lost"})
        try:
            c = d.client()
            c.account("world", min_balance=None)
            c.account("co")
            status, resp = c.transfer("co-1", "world", "co", 7)
            self.assertEqual((status, resp["to_balance"], resp["replayed"]), (201, "7", False))
            self.assertIn("connection lost during COMMIT of 1 transfers; committed: yes",
                          d.read_log())
            self.assertEqual(c.transfer("co-2", "world", "co", 1)[0], 201)
            self.assertEqual([e["transfer_id"] for e in c.entries("co")], ["co-1", "co-2"])
            status, again = c.transfer("co-1", "world", "co", 7)
            self.assertEqual((status, again["replayed"]), (200, True))
            rc, out = harness.verify(pg.conninfo)
            self.assertEqual(rc, 0, out)
        finally:
            d.stop()
