"""Batches sent ahead (engine/committer.c): a large batch is judged on the
states the batch before it leaves while that one still commits, copies its
journal rows at once, and commits only if that one did. Each test of one
process checks on /metrics or in the log that the path it is about was
taken, so that it exercises it. With two processes on the same accounts,
each one's cached states are mostly stale, so most batches there are
judged on loaded states and few go ahead: that test checks the outcome,
and that no request waits near statement_timeout, as a lock cycle
PostgreSQL could not see would make it wait."""
import os
import threading
import time
import unittest

import harness
import test_concurrency
from test_concurrency import metric, open_accounts, run_threads

N = 300  # transfers a request: enough for COPY, and one request a batch


def batch(client, prefix, tag, frm, payees, amount):
    """One non-atomic request of a transfer of amount from frm to each
    payee; returns its results."""
    status, resp = client.post("/v1/transfers/batch", {"atomic": False, "transfers": [
        {"id": "%s-%s-%d" % (prefix, tag, i), "from": frm, "to": p, "amount": amount}
        for i, p in enumerate(payees)]})
    assert status == 200, (status, resp)
    return resp["results"]


def posted(results):
    return sum(r["status"] == "posted" for r in results)


def warm(client, prefix, wallet_funds=None):
    """Opens an issuer and N payees "<prefix>-p<i>" holding 1 each (and
    "<prefix>-wallet" with wallet_funds, if given), in one batch, which puts
    every state in the cache; returns the payees."""
    payees = ["%s-p%d" % (prefix, i) for i in range(N)]
    names = ["p%d" % i for i in range(N)] + (["wallet"] if wallet_funds else [])
    open_accounts(client, prefix, *names)
    transfers = [{"id": "%s-warm-%d" % (prefix, i), "from": prefix + "-issuer", "to": p,
                  "amount": 1} for i, p in enumerate(payees)]
    if wallet_funds:
        transfers.append({"id": prefix + "-fund", "from": prefix + "-issuer",
                          "to": prefix + "-wallet", "amount": wallet_funds})
    status, resp = client.post("/v1/transfers/batch", {"atomic": True, "transfers": transfers})
    assert status == 200, (status, resp)
    return payees


def spend_concurrently(servers, prefix, frm, payees, amount, clients=6, requests=3):
    """clients threads, each on the next of servers in turn, send requests
    batch requests each; returns all their results."""
    results, lock = [], threading.Lock()

    def worker(i):
        cl = servers[i % len(servers)].client(timeout=60)
        for k in range(requests):
            r = batch(cl, prefix, "%d-%d" % (i, k), frm, payees, amount)
            with lock:
                results.extend(r)
        cl.close()

    run_threads(clients, worker)
    return results


class AheadOneProcess(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = harness.cluster()
        cls.pg.reset()
        cls.d = harness.Ledgerd(db=cls.pg.conninfo)

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def warmed(self, prefix, wallet_funds):
        """A client of the process, and the payees of warm()."""
        c = self.d.client()
        return c, warm(c, prefix, wallet_funds)

    def wallet_behind_cache(self, prefix):
        """warmed() with a wallet of 300, then topped up with 700 in a way
        the journal loses (as a restored database would): the process's
        cache says 1,000, the journal 300."""
        c, payees = self.warmed(prefix, 300)
        self.assertEqual(c.transfer(prefix + "-top", prefix + "-issuer", prefix + "-wallet",
                                    700)[0], 201)
        self.pg.psql(test_concurrency.Concurrency.UNDO_LAST.format(
            t=prefix + "-top", frm=prefix + "-issuer", fb=-(N + 300), to=prefix + "-wallet",
            tb=300))
        self.pg.psql("UPDATE ledger.accounts a SET last_effective_at = (SELECT max("
                     "effective_at) FROM ledger.entries e WHERE e.account_id = a.id)"
                     " WHERE ext_id IN ('%s-issuer', '%s-wallet')" % (prefix, prefix))
        return c, payees

    def payees_total(self, prefix):
        _, total, _ = self.pg.psql(
            "SELECT sum(balance) FROM ledger.accounts WHERE ext_id LIKE '%s-p%%'" % prefix)
        return int(total)

    def test_concurrent_batches_spend_exactly_the_funds(self):
        # 6 clients, 3 requests each, 3 a transfer: 16,200 asked of 15,000.
        # The early batches all pass and go ahead of each other; the last
        # ones meet the floor. Exactly 5,000 transfers may pass.
        c, payees = self.warmed("ah1", 15000)
        ahead_before = metric(c, "ledgerd_ahead_batches_total")
        results = spend_concurrently([self.d], "ah1", "ah1-wallet", payees, 3)
        self.assertGreater(metric(c, "ledgerd_ahead_batches_total"), ahead_before)
        self.assertEqual(posted(results), 5000)
        for r in results:
            if r["status"] != "posted":
                self.assertEqual(r.get("error"), "insufficient_funds", r)
        self.assertEqual(c.balance("ah1-wallet"), 0)
        self.assertEqual(self.payees_total("ah1"), N + 15000)
        # Each payee's entries follow one another (seq without gaps, each
        # balance the previous plus the amount).
        for p in payees[:3]:
            entries = c.entries(p)
            self.assertEqual([e["seq"] for e in entries], list(range(1, len(entries) + 1)))
            self.assertEqual([int(e["balance"]) for e in entries],
                             [1 + 3 * k for k in range(len(entries))])
        rc, out = harness.verify(self.pg.conninfo)
        self.assertEqual(rc, 0, out)

    def test_batch_ahead_of_a_refused_one_is_rolled_back(self):
        # The journal loses a's last top-up of the wallet (as a restored
        # database would): a's cache says 1,000, the journal 300. a's next
        # batch on the wallet, judged on the cache, is refused at commit;
        # the batch sent ahead of it was judged on the 700 that one would
        # have left, and must be rolled back and judged again, not
        # committed. Between them the two batches may pay out only 300.
        # Whether the second request reaches ledgerd while the first
        # commits is up to timing, so this runs until a rollback was seen,
        # on fresh accounts each time (a refusal holds them off the cache
        # for a second).
        for attempt in range(8):
            prefix = "ah2-%d" % attempt
            c, payees = self.wallet_behind_cache(prefix)
            rolled_before = metric(c, "ledgerd_ahead_rolled_back_total")
            results = [None, None]

            def worker(i):
                cl = self.d.client()
                results[i] = batch(cl, prefix, str(i), prefix + "-wallet", payees, 1)
                cl.close()

            run_threads(2, worker)
            self.assertEqual(posted(results[0]) + posted(results[1]), 300)
            self.assertEqual(c.balance(prefix + "-wallet"), 0)
            self.assertEqual(self.payees_total(prefix), N + 300)
            if metric(c, "ledgerd_ahead_rolled_back_total") > rolled_before:
                return
        self.fail("no batch was sent ahead of a refused one in 8 tries")

    def test_batch_ahead_refused_twice_is_judged_on_loaded_states(self):
        # As above, the journal loses the wallet's last top-up: the cache
        # says 1,000, the journal 300. But the first batch here never
        # touches the wallet (the payees pay each other 1 in a ring), and
        # commits; the batch sent ahead of it spends from the wallet, and
        # the write's check of the wallet's seq refuses it. Judged again on
        # the cache, which still says 1,000, it is refused a second time,
        # and only then judged on loaded states: 150 of its 300 transfers
        # of 2 pass, the others are refused for funds, none is answered
        # 503. Timing decides whether the second request goes ahead (else
        # the two are one batch), hence the tries.
        for attempt in range(8):
            prefix = "ah5-%d" % attempt
            c, payees = self.wallet_behind_cache(prefix)
            refused_before = metric(c, "ledgerd_ahead_refused_total")
            stale_before = metric(c, "ledgerd_cache_stale_total")
            results = [None, None]

            def worker(i):
                cl = self.d.client()
                if i == 0:
                    ring = [{"id": "%s-ring-%d" % (prefix, k), "from": payees[k],
                             "to": payees[(k + 1) % N], "amount": 1} for k in range(N)]
                    status, resp = cl.post("/v1/transfers/batch",
                                           {"atomic": False, "transfers": ring})
                    assert status == 200, (status, resp)
                    results[0] = resp["results"]
                else:
                    time.sleep(0.005)
                    results[1] = batch(cl, prefix, "spend", prefix + "-wallet", payees, 2)
                cl.close()

            run_threads(2, worker)
            self.assertEqual(posted(results[0]), N)
            self.assertEqual(posted(results[1]), 150)
            for r in results[1]:
                if r["status"] != "posted":
                    self.assertEqual(r.get("error"), "insufficient_funds", r)
            self.assertEqual(c.balance(prefix + "-wallet"), 0)
            self.assertEqual(self.payees_total(prefix), N + 300)
            if metric(c, "ledgerd_ahead_refused_total") > refused_before:
                self.assertGreater(metric(c, "ledgerd_cache_stale_total"), stale_before)
                return
        self.fail("no batch sent ahead was refused in 8 tries")


class AheadSameIds(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = harness.cluster()
        cls.pg.reset()
        cls.d = harness.Ledgerd(db=cls.pg.conninfo, log_level="debug")

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def test_batch_ahead_with_an_id_of_the_batch_before(self):
        # Two requests of 300 transfers from a wallet share two ids: one
        # with the same transfer (a replay), one with another amount (an
        # id_conflict). The second, sent ahead of the first, copies its
        # journal rows while the first has not committed: its copy waits on
        # the first's ids, then fails, and the batch runs after the first,
        # where the shared ids are found. Nothing is applied twice, and no
        # request waits long. Either request may reach ledgerd first; the
        # log says whether the second went ahead.
        for attempt in range(8):
            prefix = "ah6-%d" % attempt
            c = self.d.client()
            payees = warm(c, prefix, 10000)
            wallet = prefix + "-wallet"

            def transfers(tag, dup_amount):
                ts = [{"id": "%s-%s-%d" % (prefix, tag, i), "from": wallet, "to": p,
                       "amount": 1} for i, p in enumerate(payees)]
                ts[0]["id"] = prefix + "-same"
                ts[1]["id"], ts[1]["amount"] = prefix + "-diff", dup_amount
                return ts

            results = [None, None]

            def worker(i):
                cl = self.d.client(timeout=20)
                if i:
                    time.sleep(0.005)
                status, resp = cl.post("/v1/transfers/batch", {
                    "atomic": False, "transfers": transfers("r%d" % i, 1 + i)})
                assert status == 200, (status, resp)
                results[i] = resp["results"]
                cl.close()

            log_before = len(self.d.read_log())
            started = time.monotonic()
            run_threads(2, worker)
            self.assertLess(time.monotonic() - started, 10)
            i = 0 if results[1][0].get("replayed") else 1  # the first to commit
            first, second = results[i], results[1 - i]
            self.assertEqual(posted(first), N)
            self.assertFalse(any(r.get("replayed") for r in first), first[:2])
            self.assertTrue(second[0].get("replayed"), second[0])
            self.assertEqual(second[1].get("error"), "id_conflict", second[1])
            self.assertEqual(posted(second[2:]), N - 2)
            # All of first at 1, but its "-diff" at 1 + i; second's new ones.
            self.assertEqual(c.balance(wallet), 10000 - (N - 1 + 1 + i) - (N - 2))
            if any("could not go ahead" in line and "transfers_ext_id_key" in line
                   for line in self.d.read_log()[log_before:].splitlines()):
                rc, out = harness.verify(self.pg.conninfo)
                self.assertEqual(rc, 0, out)
                return
        self.fail("no batch with an id of the batch before went ahead in 8 tries")


class AheadTwoProcesses(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = harness.cluster()
        cls.pg.reset()
        cls.a = harness.Ledgerd(db=cls.pg.conninfo)
        cls.b = harness.Ledgerd(db=cls.pg.conninfo)

    @classmethod
    def tearDownClass(cls):
        cls.a.stop()
        cls.b.stop()

    def test_both_processes_send_batches_on_the_same_accounts(self):
        # Each process sends its batches ahead while the other writes the
        # same accounts: their journal rows, copied before any lock, meet
        # the other's; refusals, retries and detected deadlocks may slow
        # them, but every request is answered and the wallet never goes
        # below zero.
        c = self.a.client()
        payees = warm(c, "ah3", 10000)
        started = time.monotonic()
        results = spend_concurrently([self.a, self.b], "ah3", "ah3-wallet", payees, 2)
        # About 1 s here; statement_timeout is 30 s.
        self.assertLess(time.monotonic() - started, 15)
        self.assertEqual(posted(results), 5000)
        self.assertEqual(c.balance("ah3-wallet"), 0)
        rc, out = harness.verify(self.pg.conninfo)
        self.assertEqual(rc, 0, out)


class AheadFaults(unittest.TestCase):
    def setUp(self):
        self.pg = harness.cluster()
        self.pg.reset()

    def test_connection_lost_after_an_ahead_commit_sent(self):
        # The connection of the first batch sent ahead breaks right after
        # its COMMIT is sent (injected fault): ledgerd looks the batch up
        # and answers what happened, committed, once.
        d = harness.Ledgerd(db=self.pg.conninfo, log_level="info",
                            env={"LEDGERD_FAULT": "ahead_commit_lost"})
        try:
            c = d.client()
            payees = warm(c, "ah4")
            results = {}

            def worker(i):
                cl = d.client()
                for k in range(4):
                    results[(i, k)] = batch(cl, "ah4", "%d-%d" % (i, k), "ah4-issuer", payees, 1)
                cl.close()

            run_threads(4, worker)
            self.assertGreater(metric(c, "ledgerd_ahead_batches_total"), 0)
            self.assertIn("connection lost during COMMIT of %d transfers; committed: yes" % N,
                          d.read_log())
            self.assertEqual(sum(posted(r) for r in results.values()), 16 * N)
            self.assertEqual(c.balance("ah4-p0"), 17)
            status, again = c.post("/v1/transfers/batch", {"atomic": False, "transfers": [
                {"id": "ah4-0-0-0", "from": "ah4-issuer", "to": "ah4-p0", "amount": 1}]})
            self.assertEqual(again["results"][0].get("replayed"), True, again)
            rc, out = harness.verify(self.pg.conninfo)
            self.assertEqual(rc, 0, out)
        finally:
            d.stop()

    def test_kill9_while_batches_go_ahead(self):
        # Every request answered before the kill is in the journal with the
        # figures it gave, whichever batch it rode; the rest left nothing
        # half-done (verify), and a retry of an answered id replays.
        d = harness.Ledgerd(db=self.pg.conninfo)
        c = d.client()
        payees = warm(c, "ah5")
        stop, lock, answered = threading.Event(), threading.Lock(), {}

        def worker(i):
            cl = d.client(timeout=10)
            k = 0
            while not stop.is_set():
                k += 1
                try:
                    results = batch(cl, "ah5", "%d-%d" % (i, k), "ah5-issuer", payees, 1)
                except (OSError, ValueError, AssertionError):
                    return
                with lock:
                    for r in results:
                        answered[r["id"]] = r

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        try:
            deadline = time.time() + 20
            while metric(c, "ledgerd_ahead_batches_total") < 3 and time.time() < deadline:
                time.sleep(0.05)
            self.assertGreaterEqual(metric(c, "ledgerd_ahead_batches_total"), 3)
        finally:
            d.kill9()
            stop.set()
            for t in threads:
                t.join()
            os.unlink(d.log.name)
        self.assertGreater(len(answered), 0)
        _, rows, _ = self.pg.psql(
            "SELECT ext_id, to_seq FROM ledger.transfers WHERE ext_id LIKE 'ah5-%-%-%'")
        journal = dict(line.split("|") for line in rows.splitlines())
        for tid, r in answered.items():
            self.assertEqual(r["status"], "posted", r)
            self.assertEqual(journal.get(tid), str(r["to_seq"]), tid)
        rc, out = harness.verify(self.pg.conninfo)
        self.assertEqual(rc, 0, out)
        d = harness.Ledgerd(db=self.pg.conninfo)
        try:
            tid = sorted(answered)[0]
            i, k, n = tid.split("-")[1:]
            status, again = d.client().post("/v1/transfers/batch", {"atomic": False, "transfers": [
                {"id": tid, "from": "ah5-issuer", "to": payees[int(n)], "amount": 1}]})
            self.assertEqual((status, again["results"][0].get("replayed")), (200, True), again)
        finally:
            d.stop()


if __name__ == "__main__":
    unittest.main()
