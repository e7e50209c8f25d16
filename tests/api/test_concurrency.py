"""SPEC section 4 under real concurrency: many clients, two ledgerd
processes on one database, group commit."""
import random
import re
import subprocess
import threading
import time
import unittest

import harness


def run_threads(n, target):
    errors = []

    def wrap(i):
        try:
            target(i)
        except BaseException as e:  # surfaced in the main thread
            errors.append(e)

    threads = [threading.Thread(target=wrap, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def metric(client, name):
    status, text = client.get("/metrics")
    assert status == 200
    m = re.search(r"^%s (\d+)$" % re.escape(name), text, re.M)
    assert m, "metric %s missing" % name
    return int(m.group(1))


def open_accounts(client, prefix, *names):
    """An unbounded issuer "<prefix>-issuer" and the accounts
    "<prefix>-<name>"."""
    client.account(prefix + "-issuer", min_balance=None)
    for n in names:
        client.account("%s-%s" % (prefix, n))


def paid(test, client, id, frm, to, amount):
    """A transfer that must be created (201)."""
    status, resp = client.transfer(id, frm, to, amount)
    test.assertEqual(status, 201, resp)
    return resp


class Concurrency(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = harness.cluster()
        cls.pg.reset()
        # One committer (the default) and several side by side in one process.
        cls.a = harness.Ledgerd(db=cls.pg.conninfo)
        cls.b = harness.Ledgerd(db=cls.pg.conninfo, extra=["--committers", "3"])
        c = cls.a.client()
        c.account("world", min_balance=None)

    @classmethod
    def tearDownClass(cls):
        cls.a.stop()
        cls.b.stop()

    def double_spend(self, prefix, servers):
        c = self.a.client()
        wallet, sink = prefix + "-wallet", prefix + "-sink"
        c.account(wallet)
        c.account(sink)
        status, _ = c.transfer(prefix + "-fund", "world", wallet, 100)
        self.assertEqual(status, 201)

        clients, total = 64, 2000
        accepted, refused, other = [], [], []
        lock = threading.Lock()

        def worker(i):
            cl = servers[i % len(servers)].client()
            for k in range(i, total, clients):
                status, resp = cl.transfer("%s-spend-%d" % (prefix, k), wallet, sink, 1)
                with lock:
                    if status == 201:
                        accepted.append(resp)
                    elif status == 422 and resp["error"] == "insufficient_funds":
                        refused.append(k)
                    else:
                        other.append((status, resp))
            cl.close()

        run_threads(clients, worker)
        self.assertEqual(other, [])
        self.assertEqual(len(accepted), 100)
        self.assertEqual(len(refused), total - 100)
        self.assertEqual(c.balance(wallet), 0)
        self.assertEqual(c.balance(sink), 100)
        entries = c.entries(wallet)
        self.assertEqual([e["seq"] for e in entries], list(range(1, 102)))
        running = 0
        for e in entries:
            running += int(e["amount"])
            self.assertEqual(int(e["balance"]), running)
            self.assertGreaterEqual(int(e["balance"]), 0)
        # Every accepted answer names a distinct entry, as committed.
        self.assertEqual(sorted(r["from_seq"] for r in accepted), list(range(2, 102)))
        by_seq = {e["seq"]: e for e in entries}
        for r in accepted:
            self.assertEqual(by_seq[r["from_seq"]]["transfer_id"], r["id"])
            self.assertEqual(int(by_seq[r["from_seq"]]["balance"]), int(r["from_balance"]))

    def test_double_spend_one_process(self):
        self.double_spend("ds1", [self.a])

    def test_double_spend_two_processes(self):
        self.double_spend("ds2", [self.a, self.b])

    def test_conservation_across_two_processes(self):
        seed = random.randrange(1 << 30)
        print("conservation seed=%d" % seed)
        c = self.a.client()
        accounts = ["cons-%02d" % i for i in range(50)]
        for i, acc in enumerate(accounts):
            c.account(acc, min_balance=None if i == 0 else ("-50" if i % 7 == 0 else "0"))
            if i:
                status, _ = c.transfer("cons-fund-%d" % i, accounts[0], acc, 1000)
                self.assertEqual(status, 201)
        clients, per_client = 32, 60
        outcomes = {}
        lock = threading.Lock()

        def worker(i):
            rnd = random.Random(seed + i)
            cl = [self.a, self.b][i % 2].client()
            for k in range(per_client):
                frm, to = rnd.sample(accounts, 2)
                tid = "cons-%d-%d" % (i, k)
                if k % 10 == 9:
                    items = [{"id": "%s-%d" % (tid, j), "from": frm, "to": to,
                              "amount": rnd.randint(1, 300)} for j in range(5)]
                    status, resp = cl.post("/v1/transfers/batch",
                                           {"transfers": items, "atomic": bool(k % 20 == 19)})
                    self.assertEqual(status, 200, resp)
                    for r in resp["results"]:
                        with lock:
                            outcomes[r["id"]] = r["status"]
                else:
                    status, resp = cl.transfer(tid, frm, to, rnd.randint(1, 300))
                    self.assertIn(status, (201, 422), resp)
                    with lock:
                        outcomes[tid] = resp.get("status", resp.get("error"))
            cl.close()

        run_threads(clients, worker)
        self.assertTrue(any(v == "posted" for v in outcomes.values()))
        self.assertTrue(any(v == "insufficient_funds" or v == "rejected"
                            for v in outcomes.values()))
        rc, out = harness.verify(self.pg.conninfo)
        self.assertEqual(rc, 0, out)
        self.assertIn("verify: OK", out)
        total = 0
        for acc in accounts:
            status, resp = c.get("/v1/accounts/" + acc)
            bal = int(resp["balance"])
            total += bal
            if acc != accounts[0]:
                self.assertGreaterEqual(bal, -50 if accounts.index(acc) % 7 == 0 else 0)
        self.assertEqual(total, 0)
        _, s, _ = self.pg.psql("SELECT sum(balance) FROM ledger.accounts WHERE currency = 'USD'")
        self.assertEqual(int(s), 0)
        # Every posted answer is in the journal, every rejected one is not.
        _, rows, _ = self.pg.psql("SELECT ext_id FROM ledger.transfers WHERE ext_id LIKE 'cons-%-%'")
        stored = set(rows.split())
        for tid, st in outcomes.items():
            self.assertEqual(tid in stored, st == "posted", tid)

    def test_big_batches_and_single_transfers_on_the_same_wallets(self):
        # A batch naming more than 1,024 accounts locks them with one
        # exclusive batch-wide lock; single transfers on the same wallets,
        # from the other process, must still never see a stale balance.
        c = self.a.client(timeout=120)
        n, rounds = 600, 3
        for i in range(n):
            c.account("mix-src-%d" % i)
            c.account("mix-dst-%d" % i)
            self.assertEqual(c.transfer("mix-fund-%d" % i, "world", "mix-src-%d" % i, 10)[0], 201)
        c.account("mix-sink")
        posted = [0] * n  # per wallet, from the answers
        other = []
        lock = threading.Lock()

        def note(i, status, resp):
            with lock:
                if status in (200, 201) and resp.get("status", "posted") == "posted":
                    posted[i] += 1
                elif not (status == 422 and resp.get("error") == "insufficient_funds"):
                    other.append((status, resp))

        def big(k):
            cl = self.a.client(timeout=120)
            items = [{"id": "mix-big-%d-%d" % (k, i), "from": "mix-src-%d" % i,
                      "to": "mix-dst-%d" % i, "amount": 3} for i in range(n)]
            status, resp = cl.post("/v1/transfers/batch", {"transfers": items})
            cl.close()
            if status != 200:
                with lock:
                    other.append((status, resp))
                return
            for i, r in enumerate(resp["results"]):
                if r["status"] == "posted":
                    note(i, 201, r)
                elif r.get("error") != "insufficient_funds":
                    note(i, 500, r)

        def small(t):
            cl = self.b.client()
            for k in range(t, n * 2, 16):
                i = k % n
                note(i, *cl.transfer("mix-small-%d" % k, "mix-src-%d" % i, "mix-sink", 3))
            cl.close()

        def worker(t):
            if t < rounds:
                big(t)
            else:
                small(t - rounds)

        run_threads(rounds + 16, worker)
        self.assertEqual(other, [])
        # 10 buys three spends of 3 from each wallet, whoever sent them.
        self.assertEqual(posted, [3] * n)
        for i in range(0, n, 37):
            self.assertEqual(c.balance("mix-src-%d" % i), 1)
        _, total, _ = self.pg.psql("SELECT sum(balance) FROM ledger.accounts"
                                   " WHERE ext_id LIKE 'mix-%'")
        self.assertEqual(int(total), 10 * n)

    def test_same_ids_in_large_batches_on_two_processes(self):
        # Two processes get batches with the same transfer ids but other
        # accounts, so their account locks do not order them: both find the
        # ids free, both COPY them (over 200 transfers), and the second one's
        # COPY meets the first's rows. It must run again and answer
        # id_conflict, never apply an id twice nor fail the request.
        n, rounds = 250, 6
        c = self.a.client()
        for side in "ab":
            c.account("dup-%s-src" % side, min_balance=None)
            c.account("dup-%s-dst" % side)
        retries_before = sum(metric(s.client(), "ledgerd_batch_retries_total")
                             for s in (self.a, self.b))
        for r in range(rounds):
            results = {}

            def send(i):
                side = "ab"[i]
                cl = (self.a, self.b)[i].client(timeout=120)
                items = [{"id": "dup-%d-%d" % (r, k), "from": "dup-%s-src" % side,
                          "to": "dup-%s-dst" % side, "amount": 1} for k in range(n)]
                results[side] = cl.post("/v1/transfers/batch",
                                        {"transfers": items, "atomic": False})
                cl.close()

            run_threads(2, send)
            for side in "ab":
                self.assertEqual(results[side][0], 200, results[side])
            for k in range(n):
                a, b = results["a"][1]["results"][k], results["b"][1]["results"][k]
                self.assertEqual(sorted([a["status"], b["status"]]), ["posted", "rejected"])
                self.assertEqual((a if a["status"] == "rejected" else b)["error"], "id_conflict")
        self.assertEqual(c.balance("dup-a-dst") + c.balance("dup-b-dst"), n * rounds)
        retries = sum(metric(s.client(), "ledgerd_batch_retries_total")
                      for s in (self.a, self.b)) - retries_before
        print("\n  same ids on two processes: %d batch retries in %d rounds" % (retries, rounds))

    def test_group_commit_on_hot_account(self):
        c = self.a.client()
        c.account("hot-merchant")
        payers = ["hot-payer-%d" % i for i in range(64)]
        for p in payers:
            c.account(p)
            self.assertEqual(c.transfer("hot-fund-" + p, "world", p, 10 ** 6)[0], 201)
        commits_before = metric(c, "ledgerd_commits_total")
        _, xact_before, _ = self.pg.psql(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
        per_client = 40

        def worker(i):
            cl = self.a.client()
            for k in range(per_client):
                status, resp = cl.transfer("hot-%d-%d" % (i, k), payers[i], "hot-merchant", 1)
                self.assertEqual(status, 201, resp)
            cl.close()

        run_threads(64, worker)
        transfers = 64 * per_client
        commits = metric(c, "ledgerd_commits_total") - commits_before
        _, xact_after, _ = self.pg.psql(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
        print("hot account: %d transfers in %d ledgerd commits (%d database commits)"
              % (transfers, commits, int(xact_after) - int(xact_before)))
        self.assertEqual(c.balance("hot-merchant"), transfers)
        self.assertGreater(commits, 0)
        # Group commit: far fewer transactions than transfers. How few
        # depends on how fast these Python clients send against how fast a
        # batch commits (about 3 transfers a batch here with cached account
        # states, whose batches take one round trip); one commit per
        # transfer is what this must never be.
        self.assertLess(commits * 2, transfers)
        # The database agrees (its count includes reads and stats queries,
        # which run in their own transactions, so allow for them).
        self.assertLess(int(xact_after) - int(xact_before), transfers)

    # Each process caches the account states it committed and judges a
    # batch on them without loading; the journal's (account, seq) key
    # refuses a state another process has changed since, and the batch is
    # judged again on loaded states. These tests make the cached state
    # stale on purpose, and check on ledgerd_cache_stale_total that the
    # cached judgement was made and refused, so that they exercise it.
    # Each has its own issuer: after a refusal a process judges those
    # accounts on loaded states for a second, and other tests here share
    # "world" between the processes.

    def spent_by_b(self, prefix, amount):
        """Process a funds "<prefix>-wallet" with 100 (and caches it), then
        b pays amount of it to "<prefix>-other". Returns both clients and
        a's ledgerd_cache_stale_total from before b's payment."""
        a, b = self.a.client(), self.b.client()
        open_accounts(a, prefix, "wallet", "other")
        paid(self, a, prefix + "-fund", prefix + "-issuer", prefix + "-wallet", 100)
        stale_before = metric(a, "ledgerd_cache_stale_total")
        paid(self, b, prefix + "-b", prefix + "-wallet", prefix + "-other", amount)
        return a, b, stale_before

    def test_spend_by_the_other_process_is_seen(self):
        a, b, stale_before = self.spent_by_b("cs1", 100)
        # a's cached state still says 100, which would allow this.
        status, resp = a.transfer("cs1-a", "cs1-wallet", "cs1-issuer", 100)
        self.assertEqual((status, resp.get("error")), (422, "insufficient_funds"), resp)
        self.assertEqual(metric(a, "ledgerd_cache_stale_total"), stale_before + 1)
        self.assertEqual(a.balance("cs1-wallet"), 0)
        self.assertEqual(b.balance("cs1-other"), 100)

    def test_state_changed_by_the_other_process_is_built_on(self):
        a, _, stale_before = self.spent_by_b("cs2", 30)
        status, resp = a.transfer("cs2-a", "cs2-wallet", "cs2-issuer", 50)
        self.assertEqual(status, 201, resp)
        self.assertEqual(resp["from_balance"], "20")
        self.assertEqual(metric(a, "ledgerd_cache_stale_total"), stale_before + 1)
        entries = a.entries("cs2-wallet")
        self.assertEqual([(e["seq"], e["transfer_id"], e["balance"]) for e in entries],
                         [(1, "cs2-fund", "100"), (2, "cs2-b", "70"), (3, "cs2-a", "20")])

    def test_replay_on_cached_accounts(self):
        a = self.a.client()
        open_accounts(a, "cs3", "wallet")
        status, first = a.transfer("cs3-fund", "cs3-issuer", "cs3-wallet", 100)
        self.assertEqual(status, 201, first)
        # Both accounts are now cached: the replay is first judged as a new
        # transfer, whose insert the existing id refuses. That says nothing
        # of their states: they are not counted stale and stay cached, so
        # the next transfer on them is judged on the cache again.
        stale_before = metric(a, "ledgerd_cache_stale_total")
        status, again = a.transfer("cs3-fund", "cs3-issuer", "cs3-wallet", 100)
        self.assertEqual(status, 200, again)
        self.assertTrue(again.pop("replayed"))
        first.pop("replayed", None)
        self.assertEqual(again, first)
        self.assertEqual(metric(a, "ledgerd_cache_stale_total"), stale_before)
        cached_before = metric(a, "ledgerd_cached_batches_total")
        self.assertEqual(a.transfer("cs3-more", "cs3-issuer", "cs3-wallet", 5)[0], 201)
        self.assertEqual(metric(a, "ledgerd_cached_batches_total"), cached_before + 1)
        self.assertEqual(a.balance("cs3-wallet"), 105)

    def test_replay_next_to_a_new_transfer_on_cached_accounts(self):
        # Judged on cached states as new, Y would be refused (the wallet is
        # empty) and not written, so nothing would check that Y exists:
        # only a batch whose every transfer id it inserts may stand.
        a = self.a.client()
        open_accounts(a, "cs6", "a", "b")
        paid(self, a, "cs6-f", "cs6-issuer", "cs6-a", 1000)
        paid(self, a, "cs6-y", "cs6-a", "cs6-b", 1000)
        status, resp = a.post("/v1/transfers/batch", {"atomic": False, "transfers": [
            {"id": "cs6-y", "from": "cs6-a", "to": "cs6-b", "amount": 1000},
            {"id": "cs6-x", "from": "cs6-b", "to": "cs6-a", "amount": 1}]})
        self.assertEqual(status, 200, resp)
        y, x = resp["results"]
        self.assertEqual((y["status"], y.get("replayed")), ("posted", True), y)
        self.assertEqual((x["status"], x.get("replayed", False)), ("posted", False), x)
        self.assertEqual(a.balance("cs6-a"), 1)

    def test_refusal_judged_on_a_stale_account_is_not_written(self):
        # b credits the wallet that a has cached as empty. a's batch names
        # it only in a transfer its cached state refuses, whose id a second
        # transfer of the batch creates: the wallet gets no entry, so
        # nothing would check its state; only a batch that changes every
        # account it names may stand.
        a, b = self.a.client(), self.b.client()
        open_accounts(a, "cs7", "w", "b", "c", "d")
        paid(self, a, "cs7-f1", "cs7-issuer", "cs7-w", 100)
        paid(self, a, "cs7-f2", "cs7-w", "cs7-issuer", 100)
        paid(self, a, "cs7-f3", "cs7-issuer", "cs7-b", 100)
        paid(self, a, "cs7-f4", "cs7-issuer", "cs7-c", 1)
        paid(self, a, "cs7-f5", "cs7-issuer", "cs7-d", 1)
        paid(self, b, "cs7-g", "cs7-issuer", "cs7-w", 60)
        status, resp = a.post("/v1/transfers/batch", {"atomic": False, "transfers": [
            {"id": "cs7-x", "from": "cs7-w", "to": "cs7-c", "amount": 50},
            {"id": "cs7-x", "from": "cs7-b", "to": "cs7-d", "amount": 10}]})
        self.assertEqual(status, 200, resp)
        first, second = resp["results"]
        self.assertEqual(first["status"], "posted", first)
        self.assertEqual((second["status"], second.get("error")), ("rejected", "id_conflict"),
                         second)
        self.assertEqual(a.balance("cs7-w"), 10)
        self.assertEqual(a.balance("cs7-b"), 100)
        self.assertEqual(a.balance("cs7-d"), 1)

    def test_large_batch_on_stale_cached_states(self):
        # A batch of 200 transfers writes its journal rows by COPY; the
        # stale wallet must be refused there too.
        a, b = self.a.client(), self.b.client()
        open_accounts(a, "cs8", "w", *("p%d" % i for i in range(200)))
        payees = ["cs8-p%d" % i for i in range(200)]
        paid(self, a, "cs8-f", "cs8-issuer", "cs8-w", 10000)

        def batch(tag):
            status, resp = a.post("/v1/transfers/batch", {"atomic": False, "transfers": [
                {"id": "cs8-%s-%d" % (tag, i), "from": "cs8-w", "to": p, "amount": 1}
                for i, p in enumerate(payees)]})
            self.assertEqual(status, 200, resp)
            return [(r["status"], r.get("error")) for r in resp["results"]]

        self.assertEqual(batch("one"), [("posted", None)] * 200)
        paid(self, b, "cs8-g", "cs8-w", "cs8-issuer", 9700)
        stale_before = metric(a, "ledgerd_cache_stale_total")
        # Judged on the cached 9,800 all 200 would pass; on the real 100,
        # the first 100.
        self.assertEqual(batch("two"),
                         [("posted", None)] * 100 + [("rejected", "insufficient_funds")] * 100)
        self.assertEqual(metric(a, "ledgerd_cache_stale_total"), stale_before + 1)
        self.assertEqual(a.balance("cs8-w"), 0)

    # A database behind what a process cached: it lost the process's last
    # commit (restored, or an asynchronous standby promoted). Simulated by
    # removing that commit by hand, the journal's triggers off for it.
    UNDO_LAST = """BEGIN;
        ALTER TABLE ledger.entries DISABLE TRIGGER entries_insert_only;
        ALTER TABLE ledger.transfers DISABLE TRIGGER transfers_insert_only;
        DELETE FROM ledger.entries WHERE transfer_ext_id = '{t}';
        DELETE FROM ledger.transfers WHERE ext_id = '{t}';
        UPDATE ledger.accounts SET balance = {fb}, seq = seq - 1 WHERE ext_id = '{frm}';
        UPDATE ledger.accounts SET balance = {tb}, seq = seq - 1 WHERE ext_id = '{to}';
        ALTER TABLE ledger.entries ENABLE ALWAYS TRIGGER entries_insert_only;
        ALTER TABLE ledger.transfers ENABLE ALWAYS TRIGGER transfers_insert_only;
        COMMIT;"""

    def test_journal_behind_the_cache_on_the_same_sessions(self):
        a = self.a.client()
        open_accounts(a, "cs4", "wallet")
        paid(self, a, "cs4-1", "cs4-issuer", "cs4-wallet", 100)
        paid(self, a, "cs4-2", "cs4-issuer", "cs4-wallet", 50)
        self.pg.psql(self.UNDO_LAST.format(t="cs4-2", frm="cs4-issuer", fb=-100,
                                           to="cs4-wallet", tb=100))
        # The cache says 150 at seq 2; the journal has 100 at seq 1. The
        # new entries' (account, seq) are free, so only the write's own
        # check of each account's seq refuses the cached judgement.
        stale_before = metric(a, "ledgerd_cache_stale_total")
        status, resp = a.transfer("cs4-3", "cs4-wallet", "cs4-issuer", 120)
        self.assertEqual((status, resp.get("error")), (422, "insufficient_funds"), resp)
        self.assertEqual(metric(a, "ledgerd_cache_stale_total"), stale_before + 1)
        status, resp = a.transfer("cs4-4", "cs4-wallet", "cs4-issuer", 30)
        self.assertEqual(status, 201, resp)
        self.assertEqual(resp["from_balance"], "70")
        self.assertEqual([(e["seq"], e["transfer_id"], e["balance"])
                          for e in a.entries("cs4-wallet")],
                         [(1, "cs4-1", "100"), (2, "cs4-4", "70")])


class AnswersAfterCommit(harness.LedgerdTestCase):
    """A committed batch is answered without waiting for the batch after
    it, whatever that one waits on (committer.c, flight_follow)."""

    def hold(self, account):
        """A psql session holding the advisory lock ledgerd takes for
        account (pg_write.c) until release()."""
        p = subprocess.Popen(["psql", harness.cluster().conninfo, "-XAtq", "-v", "ON_ERROR_STOP=1"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.addCleanup(lambda: p.poll() is None and (p.kill(), p.wait()))
        p.stdin.write("BEGIN; SELECT pg_advisory_xact_lock(hashtextextended('%s', 0));"
                      " SELECT 'locked';\n" % account)
        p.stdin.flush()
        while p.stdout.readline().strip() != "locked":
            self.assertIsNone(p.poll(), "psql could not take the lock")
        return p

    def release(self, p):
        p.stdin.write("COMMIT;\n")
        p.stdin.close()
        self.assertEqual(p.wait(10), 0)

    def wait_for_lock_waiters(self, n):
        deadline = time.time() + 10
        while True:
            _, out, _ = harness.cluster().psql(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            if int(out) >= n:
                return
            self.assertLess(time.time(), deadline, "no batch reached the lock")
            time.sleep(0.05)

    def test_a_committed_batch_is_not_held_up_by_the_next_ones_locks(self):
        p = self.uid()
        open_accounts(self.c, p, "a", "x")
        issuer, a, x = p + "-issuer", p + "-a", p + "-x"
        answers = {}

        def send(name, to):
            c = self.ledgerd.client()
            answers[name] = c.transfer(self.uid(name), issuer, to, 5)
            answers[name + "_at"] = time.time()
            c.close()

        hold_a, hold_x = self.hold(a), self.hold(x)
        first = threading.Thread(target=send, args=("first", a))
        first.start()
        self.wait_for_lock_waiters(1)  # the first batch waits for a
        second = threading.Thread(target=send, args=("second", x))
        second.start()
        time.sleep(0.5)  # queued behind the first
        released = time.time()
        self.release(hold_a)
        first.join(8)
        self.assertFalse(first.is_alive(), "the first transfer's answer waited for x's lock")
        self.assertEqual(answers["first"][0], 201, answers["first"])
        self.assertLess(answers["first_at"] - released, 5)
        self.assertTrue(second.is_alive(), "the second transfer went past x's lock")
        self.release(hold_x)
        second.join(10)
        self.assertEqual(answers["second"][0], 201, answers["second"])
        self.assertEqual((self.c.balance(a), self.c.balance(x)), (5, 5))


class NewSessions(unittest.TestCase):
    """A committer's session on another server empties the account cache.
    In a class of its own: restarting PostgreSQL would make the other
    tests' processes reconnect, and empty their caches, at unforeseen
    times."""

    @classmethod
    def setUpClass(cls):
        cls.pg = harness.cluster()
        cls.pg.reset()
        cls.a = harness.Ledgerd(db=cls.pg.conninfo)

    @classmethod
    def tearDownClass(cls):
        cls.a.stop()

    def test_new_sessions_forget_cached_states(self):
        a = self.a.client()
        open_accounts(a, "cs5", "wallet")
        paid(self, a, "cs5-1", "cs5-issuer", "cs5-wallet", 100)
        # Another server (here: the same one restarted), with a state that
        # differs at the same seq: what a failover to a standby that lost
        # the last commits and then took others would show. Nothing in the
        # journal can tell this from the cached state, so sessions on
        # another server must not trust the cache.
        self.pg.stop()
        self.pg.start()
        self.pg.psql("UPDATE ledger.accounts SET balance = 0 WHERE ext_id IN"
                     " ('cs5-wallet', 'cs5-issuer')")
        try:
            status, resp = a.transfer("cs5-2", "cs5-wallet", "cs5-issuer", 100)
            self.assertEqual((status, resp.get("error")), (422, "insufficient_funds"), resp)
        finally:
            self.pg.psql("UPDATE ledger.accounts SET balance = 100 WHERE ext_id = 'cs5-wallet';"
                         "UPDATE ledger.accounts SET balance = -100 WHERE ext_id = 'cs5-issuer'")


class SmallLockTable(unittest.TestCase):
    """Big batches must not need one lock-table slot per account: here the
    whole cluster has about 420 slots and four concurrent batches name
    1,200 accounts each, on two processes."""

    @classmethod
    def setUpClass(cls):
        cls.pg = harness.Cluster("-c max_connections=20 -c max_locks_per_transaction=10")
        cls.a = harness.Ledgerd(db=cls.pg.conninfo)
        cls.b = harness.Ledgerd(db=cls.pg.conninfo)

    @classmethod
    def tearDownClass(cls):
        cls.a.stop()
        cls.b.stop()
        cls.pg.destroy()

    def test_concurrent_big_batches(self):
        per_batch, batches = 600, 4

        def create(i):
            c = self.a.client()
            for k in range(i * per_batch, (i + 1) * per_batch):
                c.account("big-src-%d" % k, min_balance="-10")
                c.account("big-dst-%d" % k)
            c.close()

        run_threads(batches, create)

        def send(i):
            c = (self.a if i % 2 else self.b).client(timeout=120)
            items = [{"id": "big-%d" % k, "from": "big-src-%d" % k, "to": "big-dst-%d" % k,
                      "amount": 3} for k in range(i * per_batch, (i + 1) * per_batch)]
            status, resp = c.post("/v1/transfers/batch", {"transfers": items, "atomic": True})
            self.assertEqual(status, 200, resp)
            self.assertEqual({r["status"] for r in resp["results"]}, {"posted"})
            c.close()

        run_threads(batches, send)
        _, total, _ = self.pg.psql("SELECT count(*) || ' ' || sum(balance) FROM ledger.accounts"
                                   " WHERE ext_id LIKE 'big-dst-%'")
        self.assertEqual(total, "%d %d" % (per_batch * batches, 3 * per_batch * batches))
        code, out = harness.verify(self.pg.conninfo)
        self.assertEqual(code, 0, out)

    def test_batch_that_needs_more_locks_than_the_table_has(self):
        # 500 transfers name 1,000 accounts: few enough to be locked one by
        # one, more than this lock table holds. The retry must lock them
        # with the single batch-wide lock instead of failing the same way.
        c = self.b.client(timeout=120)
        for k in range(500):
            c.account("mid-src-%d" % k, min_balance="-10")
            c.account("mid-dst-%d" % k)
        items = [{"id": "mid-%d" % k, "from": "mid-src-%d" % k, "to": "mid-dst-%d" % k,
                  "amount": 2} for k in range(500)]
        status, resp = c.post("/v1/transfers/batch", {"transfers": items, "atomic": True})
        self.assertEqual(status, 200, resp)
        self.assertEqual({r["status"] for r in resp["results"]}, {"posted"})
        self.assertEqual(c.balance("mid-dst-499"), 2)


class CommittersOption(unittest.TestCase):
    def test_out_of_range_or_not_a_number_is_refused(self):
        for value in ("0", "9", "-1", "two", "2x", ""):
            p = subprocess.run([harness.LEDGERD, "--committers", value, "--db", "host=/nonexistent"],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 2, value + ": " + p.stdout + p.stderr)
            self.assertIn("--committers must be a whole number from 1 to 8", p.stderr, value)


if __name__ == "__main__":
    unittest.main()
