"""SPEC section 3, pending (two-phase) transfers: reserve, post, void,
expire — alone, in batches, under concurrency, across restarts and across
two ledgerd processes."""
import signal
import threading
import time
import unittest

import harness
from test_concurrency import run_threads


class Pending(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = harness.cluster()
        cls.pg.reset()
        cls.d = harness.Ledgerd(db=cls.pg.conninfo)
        cls.c = cls.d.client()
        cls.c.account("world", min_balance=None)

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def funded(self, name, amount):
        self.c.account(name)
        if amount:
            status, resp = self.c.transfer("fund-" + name, "world", name, amount)
            self.assertEqual(status, 201, resp)

    def state(self, name):
        status, a = self.c.get("/v1/accounts/" + name)
        self.assertEqual(status, 200)
        return {k: a[k] for k in ("balance", "pending_out", "pending_in", "available", "seq")}

    def test_reserve_post_partial_releases_rest(self):
        self.funded("pp-w", 100)
        self.c.account("pp-m")
        status, r = self.c.transfer("pp-1", "pp-w", "pp-m", 60, pending=True)
        self.assertEqual(status, 201, r)
        self.assertEqual((r["status"], r["from_balance"], r["to_balance"]), ("pending", "100", "0"))
        self.assertEqual(self.state("pp-w"), {"balance": "100", "pending_out": "60",
                                              "pending_in": "0", "available": "40", "seq": 2})
        self.assertEqual(self.state("pp-m")["pending_in"], "60")
        # The reservation counts against every later debit.
        status, r2 = self.c.transfer("pp-2", "pp-w", "pp-m", 41)
        self.assertEqual((status, r2["error"]), (422, "insufficient_funds"))
        status, r2 = self.c.transfer("pp-3", "pp-w", "pp-m", 41, pending=True)
        self.assertEqual((status, r2["error"]), (422, "insufficient_funds"))
        # Post more than reserved: refused, nothing changes.
        status, e = self.c.post("/v1/transfers/pp-1/post", {"amount": 61})
        self.assertEqual((status, e["error"]), (422, "exceeds_pending"))
        status, p = self.c.post("/v1/transfers/pp-1/post", {"amount": "45"})
        self.assertEqual(status, 200, p)
        self.assertEqual((p["status"], p["posted_amount"], p["replayed"]), ("posted", "45", False))
        self.assertEqual((p["from_balance"], p["to_balance"]), ("55", "45"))
        self.assertEqual(self.state("pp-w"), {"balance": "55", "pending_out": "0",
                                              "pending_in": "0", "available": "55", "seq": 3})
        self.assertEqual(self.state("pp-m")["pending_in"], "0")
        # The same post again is a replay; another amount or a void is not.
        status, again = self.c.post("/v1/transfers/pp-1/post", {"amount": 45})
        self.assertEqual((status, again["replayed"], again["from_seq"]), (200, True, 3))
        status, e = self.c.post("/v1/transfers/pp-1/post", {"amount": 44})
        self.assertEqual((status, e["error"]), (409, "already_posted"))
        status, e = self.c.post("/v1/transfers/pp-1/post")
        self.assertEqual((status, e["error"]), (409, "already_posted"))
        status, e = self.c.post("/v1/transfers/pp-1/void", {})
        self.assertEqual((status, e["error"]), (409, "already_posted"))
        # Entries of both sides, as SPEC section 2 defines them.
        w = self.c.entries("pp-w")
        self.assertEqual([(e["kind"], e["amount"], e["pending_change"], e["balance"],
                           e["pending_out"]) for e in w[1:]],
                         [("pending", "0", "60", "100", "60"),
                          ("post_pending", "-45", "-60", "55", "0")])
        m = self.c.entries("pp-m")
        self.assertEqual([(e["kind"], e["amount"], e["pending_change"], e["balance"],
                           e["pending_in"]) for e in m],
                         [("pending", "0", "60", "0", "60"),
                          ("post_pending", "45", "-60", "45", "0")])
        status, g = self.c.get("/v1/transfers/pp-1")
        self.assertEqual((g["status"], g["posted_amount"]), ("posted", "45"))

    def test_void_and_its_errors(self):
        self.funded("pv-w", 50)
        self.c.account("pv-m")
        self.assertEqual(self.c.transfer("pv-1", "pv-w", "pv-m", 50, pending=True)[0], 201)
        status, v = self.c.post("/v1/transfers/pv-1/void")
        self.assertEqual((status, v["status"], v["from_balance"]), (200, "voided", "50"))
        self.assertEqual(self.state("pv-w")["available"], "50")
        status, again = self.c.post("/v1/transfers/pv-1/void", {})
        self.assertEqual((status, again["replayed"]), (200, True))
        status, e = self.c.post("/v1/transfers/pv-1/post")
        self.assertEqual((status, e["error"]), (409, "already_voided"))
        for bad in ({"amount": 1}, {"x": 1}, [1]):
            status, e = self.c.post("/v1/transfers/pv-1/void", bad)
            self.assertEqual((status, e["error"]), (400, "invalid_request"), bad)
        status, e = self.c.post("/v1/transfers/pv-1/post", {"amount": 0})
        self.assertEqual((status, e["error"]), (400, "invalid_amount"))
        status, e = self.c.post("/v1/transfers/nope/void")
        self.assertEqual((status, e["error"]), (404, "pending_not_found"))
        kinds = [e["kind"] for e in self.c.entries("pv-m")]
        self.assertEqual(kinds, ["pending", "void_pending"])

    def test_pending_replay_and_conflict(self):
        self.funded("pr-w", 10)
        self.c.account("pr-m")
        status, first = self.c.transfer("pr-1", "pr-w", "pr-m", 5, pending=True)
        self.assertEqual(status, 201)
        status, again = self.c.transfer("pr-1", "pr-w", "pr-m", 5, pending=True)
        self.assertEqual((status, again["replayed"], again["from_seq"]),
                         (200, True, first["from_seq"]))
        status, e = self.c.transfer("pr-1", "pr-w", "pr-m", 5)
        self.assertEqual((status, e["error"]), (409, "id_conflict"))
        # Settled since: a replay of the creation still answers the
        # original result, while GET shows where the transfer stands.
        status, posted = self.c.post("/v1/transfers/pr-1/post", {"amount": 3})
        self.assertEqual((status, posted["status"]), (200, "posted"))
        status, again = self.c.transfer("pr-1", "pr-w", "pr-m", 5, pending=True)
        self.assertEqual(status, 200, again)
        self.assertTrue(again["replayed"])
        again.pop("replayed")
        first.pop("replayed")
        self.assertEqual(again, first)
        self.assertNotIn("posted_amount", again)
        status, now = self.c.get("/v1/transfers/pr-1")
        self.assertEqual((now["status"], now["posted_amount"]), ("posted", "3"))

    def test_batches_mix_pending_post_and_void(self):
        self.funded("pb-w", 100)
        self.c.account("pb-m")
        items = [{"id": "pb-1", "from": "pb-w", "to": "pb-m", "amount": 30, "pending": True},
                 {"id": "pb-2", "from": "pb-w", "to": "pb-m", "amount": 30, "pending": True},
                 {"action": "post", "id": "pb-1", "amount": 10},
                 {"action": "void", "id": "pb-2"},
                 {"id": "pb-3", "from": "pb-w", "to": "pb-m", "amount": 90}]
        status, resp = self.c.post("/v1/transfers/batch", {"transfers": items, "atomic": True})
        self.assertEqual(status, 200, resp)
        res = resp["results"]
        # Each result shows the transfer as that item left it.
        self.assertEqual([r["status"] for r in res],
                         ["pending", "pending", "posted", "voided", "posted"])
        self.assertEqual(res[2]["posted_amount"], "10")
        self.assertEqual(self.state("pb-w"), {"balance": "0", "pending_out": "0",
                                              "pending_in": "0", "available": "0", "seq": 6})
        # Atomic: a failing post undoes the reservation made before it.
        items = [{"id": "pb-4", "from": "pb-m", "to": "pb-w", "amount": 5, "pending": True},
                 {"action": "post", "id": "pb-4", "amount": 6}]
        status, resp = self.c.post("/v1/transfers/batch", {"transfers": items, "atomic": True})
        self.assertEqual([r.get("error") for r in resp["results"]],
                         ["batch_failed", "exceeds_pending"])
        self.assertEqual(self.c.get("/v1/transfers/pb-4")[0], 404)
        self.assertEqual(self.state("pb-m")["pending_out"], "0")
        # Not atomic: the reservation stands, the bad post fails alone.
        status, resp = self.c.post("/v1/transfers/batch", {"transfers": items, "atomic": False})
        self.assertEqual([r.get("error") for r in resp["results"]], [None, "exceeds_pending"])
        self.assertEqual(self.state("pb-m")["pending_out"], "5")
        for bad in ({"action": "settle", "id": "pb-4"}, {"action": "void", "id": "pb-4", "amount": 1},
                    {"action": "post"}):
            status, e = self.c.post("/v1/transfers/batch", {"transfers": [bad]})
            self.assertEqual((status, e["error"]), (400, "invalid_request"), bad)

    def test_concurrent_reservations_never_overspend(self):
        self.funded("pc-w", 1000)
        self.c.account("pc-m")
        accepted, refused, other = [], [], []
        lock = threading.Lock()

        def worker(i):
            cl = self.d.client()
            for k in range(8):
                status, r = cl.transfer("pc-%d-%d" % (i, k), "pc-w", "pc-m", 7 + (i + k) % 5,
                                        pending=True)
                with lock:
                    if status == 201:
                        accepted.append(int(r["amount"]))
                    elif status == 422 and r["error"] == "insufficient_funds":
                        refused.append(1)
                    else:
                        other.append((status, r))
            cl.close()

        run_threads(64, worker)
        self.assertEqual(other, [])
        self.assertGreater(len(refused), 0)
        self.assertLessEqual(sum(accepted), 1000)
        # Demand far exceeds supply: what is left is less than the smallest ask.
        self.assertLess(1000 - sum(accepted), 7)
        st = self.state("pc-w")
        self.assertEqual((st["balance"], st["pending_out"]), ("1000", str(sum(accepted))))
        self.assertEqual(int(st["available"]), 1000 - sum(accepted))

    def test_concurrent_post_and_void_one_wins(self):
        self.funded("pw-w", 64 * 10)
        self.c.account("pw-m")
        for i in range(32):
            self.assertEqual(self.c.transfer("pw-%d" % i, "pw-w", "pw-m", 10, pending=True)[0], 201)
        outcomes = {}
        lock = threading.Lock()

        def worker(i):
            cl = self.d.client()
            action = "post" if i % 2 == 0 else "void"
            status, r = cl.post("/v1/transfers/pw-%d/%s" % (i // 2, action))
            with lock:
                outcomes.setdefault(i // 2, []).append((action, status, r.get("error")))
            cl.close()

        run_threads(64, worker)
        posted = 0
        for i, outs in outcomes.items():
            wins = [o for o in outs if o[1] == 200]
            losses = [o for o in outs if o[1] == 409]
            self.assertEqual((len(wins), len(losses)), (1, 1), outs)
            expected = "already_voided" if wins[0][0] == "void" else "already_posted"
            self.assertEqual(losses[0][2], expected, outs)
            posted += wins[0][0] == "post"
        st = self.state("pw-w")
        self.assertEqual((st["pending_out"], st["balance"]), ("0", str(640 - 10 * posted)))
        rc, out = harness.verify(self.pg.conninfo)
        self.assertEqual(rc, 0, out)

    def test_expiry_releases_within_deadline(self):
        self.funded("pe-w", 10)
        self.c.account("pe-m")
        status, r = self.c.transfer("pe-1", "pe-w", "pe-m", 10, pending=True, timeout_s=1)
        self.assertEqual((status, r["timeout_s"]), (201, 1))
        self.assertIn("expires_at", r)
        started = time.time()
        while time.time() - started < 3:
            if self.c.get("/v1/transfers/pe-1")[1]["status"] == "expired":
                break
            time.sleep(0.05)
        status, g = self.c.get("/v1/transfers/pe-1")
        self.assertEqual(g["status"], "expired")
        self.assertLess(time.time() - started, 3.0)
        self.assertEqual(self.state("pe-w")["available"], "10")
        status, e = self.c.post("/v1/transfers/pe-1/post")
        self.assertEqual((status, e["error"]), (409, "pending_expired"))
        status, e = self.c.post("/v1/transfers/pe-1/void")
        self.assertEqual((status, e["error"]), (409, "pending_expired"))
        kinds = [(e["kind"], e["pending_change"]) for e in self.c.entries("pe-w")]
        self.assertEqual(kinds[-1], ("expire_pending", "-10"))


class ExpiryAcrossProcesses(unittest.TestCase):
    def test_two_processes_expire_once_and_restart_catches_up(self):
        pg = harness.cluster()
        pg.reset()
        a = harness.Ledgerd(db=pg.conninfo)
        b = harness.Ledgerd(db=pg.conninfo)
        try:
            c = a.client()
            c.account("world", min_balance=None)
            c.account("x-w")
            c.account("x-m")
            self.assertEqual(c.transfer("x-fund", "world", "x-w", 1000)[0], 201)
            for i in range(40):
                status, _ = c.transfer("x-%d" % i, "x-w", "x-m", 5, pending=True, timeout_s=1)
                self.assertEqual(status, 201)
            time.sleep(3)
            _, n, _ = pg.psql("SELECT count(*) FROM ledger.entries WHERE kind = 'expire_pending'")
            self.assertEqual(int(n), 80)  # one per side, not two
            _, dup, _ = pg.psql("SELECT count(*) FROM (SELECT transfer_id FROM ledger.entries"
                                " WHERE kind = 'expire_pending' GROUP BY transfer_id"
                                " HAVING count(*) <> 2) d")
            self.assertEqual(dup, "0")
            # Deadlines that pass while every ledgerd is down.
            self.assertEqual(c.transfer("x-late", "x-w", "x-m", 5, pending=True,
                                        timeout_s=2)[0], 201)
            c.close()
            for p in (a, b):
                p.proc.send_signal(signal.SIGTERM)
            self.assertEqual((a.terminate(), b.terminate()), (0, 0))
            time.sleep(2.5)
            _, st, _ = pg.psql("SELECT p.state FROM ledger.pending_transfers p JOIN"
                               " ledger.transfers t ON t.id = p.transfer_id WHERE t.ext_id = 'x-late'")
            self.assertEqual(st, "pending")
            a.start()
            started = time.time()
            while time.time() - started < 3:
                if a.client().get("/v1/transfers/x-late")[1]["status"] == "expired":
                    break
                time.sleep(0.05)
            self.assertEqual(a.client().get("/v1/transfers/x-late")[1]["status"], "expired")
            self.assertEqual(a.client().get("/v1/accounts/x-w")[1]["pending_out"], "0")
            rc, out = harness.verify(pg.conninfo)
            self.assertEqual(rc, 0, out)
        finally:
            a.stop()
            b.stop()
