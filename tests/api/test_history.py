"""History: GET /v1/accounts/{id}/entries and /balance?at= (SPEC sections 2, 3 and 6)."""
import datetime
import random
import re
import unittest
import urllib.parse

import harness

TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


def parse_time(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)


def q(text):
    return urllib.parse.quote(text, safe="")


class HistoryTestCase(harness.LedgerdTestCase):

    def acct(self, suffix, min_balance="0", currency="USD"):
        id = self.uid(suffix)
        status, resp = self.c.post("/v1/accounts", {"id": id, "currency": currency,
                                                    "min_balance": min_balance})
        self.assertEqual(status, 201, resp)
        return id

    def ok(self, id, frm, to, amount, **kw):
        status, resp = self.c.transfer(id, frm, to, amount, **kw)
        self.assertEqual(status, 201, resp)
        return resp

    def fill(self, w, a, n, prefix):
        """n transfers of 1 from w to a, by batches of at most 8190."""
        done = 0
        while done < n:
            k = min(8190, n - done)
            items = [{"id": self.uid("%s%d" % (prefix, done + i)), "from": w, "to": a,
                      "amount": 1} for i in range(k)]
            status, resp = self.c.post("/v1/transfers/batch", {"transfers": items, "atomic": True})
            self.assertEqual(status, 200, resp)
            self.assertEqual(resp["results"][-1]["status"], "posted", resp["results"][-1])
            done += k

    def page(self, account, query=""):
        status, resp = self.c.get("/v1/accounts/%s/entries%s" % (q(account), query))
        self.assertEqual(status, 200, (query, resp))
        return resp

    def balance_at(self, account, at=None):
        path = "/v1/accounts/%s/balance" % q(account)
        if at is not None:
            path += "?at=" + q(at)
        status, resp = self.c.get(path)
        self.assertEqual(status, 200, (at, resp))
        return resp["balance"], resp["seq"]

class EntriesTest(HistoryTestCase):
    def test_entry_fields(self):
        w, a, b = self.acct("w", None), self.acct("a"), self.acct("b")
        t1, t2, t3 = self.uid("t1"), self.uid("t2"), self.uid("t3")
        before = datetime.datetime.now(datetime.timezone.utc)
        self.ok(t1, w, a, 100, effective_at="2021-01-01T00:00:01Z")
        self.ok(t2, a, b, "30", effective_at="2021-01-01T00:00:02.5+00:00")
        self.ok(t3, w, a, 5, effective_at="2021-01-01T02:00:03+02:00")
        after = datetime.datetime.now(datetime.timezone.utc)
        resp = self.page(a)
        self.assertIsNone(resp["next_after_seq"])
        es = resp["entries"]
        self.assertEqual([e["seq"] for e in es], [1, 2, 3])
        self.assertEqual([e["kind"] for e in es], ["posted"] * 3)
        self.assertEqual([e["transfer_id"] for e in es], [t1, t2, t3])
        self.assertEqual([e["amount"] for e in es], ["100", "-30", "5"])
        self.assertEqual([e["balance"] for e in es], ["100", "70", "75"])
        self.assertEqual([e["pending_change"] for e in es], ["0"] * 3)
        self.assertEqual([e["pending_out"] for e in es], ["0"] * 3)
        self.assertEqual([e["pending_in"] for e in es], ["0"] * 3)
        self.assertEqual([e["effective_at"] for e in es],
                         ["2021-01-01T00:00:01.000000Z", "2021-01-01T00:00:02.500000Z",
                          "2021-01-01T00:00:03.000000Z"])
        for e in es:
            self.assertRegex(e["created_at"], TIME_RE)
            created = parse_time(e["created_at"])
            self.assertGreaterEqual(created, before - datetime.timedelta(seconds=2))
            self.assertLessEqual(created, after + datetime.timedelta(seconds=2))
        # The debited side: negative amounts, running balance.
        ws = self.page(w)["entries"]
        self.assertEqual([(e["seq"], e["amount"], e["balance"], e["transfer_id"]) for e in ws],
                         [(1, "-100", "-100", t1), (2, "-5", "-105", t3)])
        bs = self.page(b)["entries"]
        self.assertEqual([(e["seq"], e["amount"], e["balance"]) for e in bs], [(1, "30", "30")])
        # Each transfer's entries match its result and the account state its last entry.
        status, g = self.c.get("/v1/transfers/" + t2)
        self.assertEqual((g["from_seq"], g["to_seq"]), (2, 1))
        status, acc = self.c.get("/v1/accounts/" + a)
        self.assertEqual((acc["balance"], acc["seq"]), (es[-1]["balance"], es[-1]["seq"]))

    def test_new_account_has_no_entries(self):
        a = self.acct("a")
        resp = self.page(a)
        self.assertEqual(resp["entries"], [])
        self.assertIsNone(resp["next_after_seq"])

    def test_rejected_transfers_leave_no_entries(self):
        w, a, b = self.acct("w", None), self.acct("a"), self.acct("b")
        self.ok(self.uid("t1"), w, a, 10)
        status, _ = self.c.transfer(self.uid("t2"), a, b, 11)
        self.assertEqual(status, 422)
        status, _ = self.c.post("/v1/transfers/batch", {"atomic": True, "transfers": [
            {"id": self.uid("t3"), "from": a, "to": b, "amount": 5},
            {"id": self.uid("t4"), "from": a, "to": b, "amount": 50}]})
        self.assertEqual(status, 200)
        self.assertEqual([e["seq"] for e in self.page(a)["entries"]], [1])
        self.assertEqual(self.page(b)["entries"], [])

    def test_paging(self):
        w, a = self.acct("w", None), self.acct("a")
        self.fill(w, a, 25, "p")
        r = self.page(a, "?limit=10")
        self.assertEqual([e["seq"] for e in r["entries"]], list(range(1, 11)))
        self.assertEqual(r["next_after_seq"], 10)
        r = self.page(a, "?after_seq=10&limit=10")
        self.assertEqual([e["seq"] for e in r["entries"]], list(range(11, 21)))
        self.assertEqual(r["next_after_seq"], 20)
        r = self.page(a, "?limit=10&after_seq=20")
        self.assertEqual([e["seq"] for e in r["entries"]], list(range(21, 26)))
        self.assertIsNone(r["next_after_seq"])
        # A page that ends exactly at the last entry: nothing more follows.
        r = self.page(a, "?after_seq=20&limit=5")
        self.assertEqual([e["seq"] for e in r["entries"]], list(range(21, 26)))
        self.assertIsNone(r["next_after_seq"])
        r = self.page(a, "?after_seq=19&limit=5")
        self.assertEqual([e["seq"] for e in r["entries"]], list(range(20, 25)))
        self.assertEqual(r["next_after_seq"], 24)
        r = self.page(a, "?after_seq=3&limit=1")
        self.assertEqual([e["seq"] for e in r["entries"]], [4])
        self.assertEqual(r["next_after_seq"], 4)
        r = self.page(a, "?after_seq=0")
        self.assertEqual([e["seq"] for e in r["entries"]], list(range(1, 26)))
        self.assertEqual([e["balance"] for e in r["entries"]], [str(i) for i in range(1, 26)])
        for after in (25, 26, 1000):
            r = self.page(a, "?after_seq=%d" % after)
            self.assertEqual(r["entries"], [], after)
            self.assertIsNone(r["next_after_seq"], after)
        # Walking the pages with next_after_seq visits every entry once.
        seen, after = [], 0
        while after is not None:
            r = self.page(a, "?limit=7&after_seq=%d" % after)
            seen += [e["seq"] for e in r["entries"]]
            after = r["next_after_seq"]
        self.assertEqual(seen, list(range(1, 26)))

    def test_limit_default_100(self):
        w, a = self.acct("w", None), self.acct("a")
        self.fill(w, a, 150, "d")
        r = self.page(a)
        self.assertEqual([e["seq"] for e in r["entries"]], list(range(1, 101)))
        self.assertEqual(r["next_after_seq"], 100)
        r = self.page(a, "?after_seq=100")
        self.assertEqual([e["seq"] for e in r["entries"]], list(range(101, 151)))
        self.assertIsNone(r["next_after_seq"])

    def test_limit_capped_at_10000(self):
        w, a = self.acct("w", None), self.acct("a")
        self.fill(w, a, 10001, "c")
        for limit in (10000, 10001, 20000, 10 ** 12, 10 ** 18, 2 ** 63, 10 ** 30):
            r = self.page(a, "?limit=%d" % limit)
            self.assertEqual(len(r["entries"]), 10000, limit)
            self.assertEqual(r["entries"][-1]["seq"], 10000, limit)
            self.assertEqual(r["next_after_seq"], 10000, limit)
        r = self.page(a, "?after_seq=10000&limit=50000")
        self.assertEqual([e["seq"] for e in r["entries"]], [10001])
        self.assertIsNone(r["next_after_seq"])

    def test_after_seq_beyond_64_bits(self):
        w, a = self.acct("w", None), self.acct("a")
        self.fill(w, a, 3, "x")
        for after in (2 ** 63 - 1, 2 ** 63, 10 ** 30):
            r = self.page(a, "?after_seq=%d" % after)
            self.assertEqual(r["entries"], [], after)
            self.assertIsNone(r["next_after_seq"], after)

    def test_bad_query_parameters(self):
        a = self.acct("a")
        for query in ("?limit=-1", "?limit=abc", "?limit=0", "?limit=", "?limit=1.5",
                      "?limit=%2B5", "?after_seq=-1", "?after_seq=x", "?after_seq=",
                      "?after_seq=1e3", "?foo=1", "?limit=10&foo=1", "?at=2021-01-01T00:00:00Z",
                      "?limit=5%00", "?limit=5%00x", "?after_seq=0%001", "?limit%00x=5"):
            status, resp = self.c.get("/v1/accounts/%s/entries%s" % (a, query))
            self.assert_error(status, resp, 400, "invalid_request", query)
        # An escaped NUL would cut a value short as a C string.
        for query in ("?at=2021-01-01T00:00:00Z%00junk", "?at%00=2021-01-01T00:00:00Z"):
            status, resp = self.c.get("/v1/accounts/%s/balance%s" % (a, query))
            self.assert_error(status, resp, 400, "invalid_request", query)

    def test_repeated_and_many_query_parameters(self):
        """A repeated key is refused, whatever its values (which one was
        meant is ambiguous); so are more than 16 different keys (as any
        unknown key would be)."""
        w, a = self.acct("w", None), self.acct("a")
        self.fill(w, a, 3, "x")
        for path, query in (("entries", "?limit=1&limit=2"), ("entries", "?limit=1&limit=1"),
                            ("entries", "?after_seq=0&limit=1&after_seq=1"),
                            ("balance", "?at=2021-01-01T00:00:00Z&at=2031-01-01T00:00:00Z"),
                            ("entries", "?" + "&".join("limit=%d" % (1 + i % 2)
                                                       for i in range(40)))):
            status, resp = self.c.get("/v1/accounts/%s/%s%s" % (a, path, query))
            self.assert_error(status, resp, 400, "invalid_request", query)
            self.assertIn("more than once", resp["message"], query)
        many = "?limit=1&" + "&".join("k%d=1" % i for i in range(16))
        for path in ("entries", "balance"):
            status, resp = self.c.get("/v1/accounts/%s/%s%s" % (a, path, many))
            self.assert_error(status, resp, 400, "invalid_request", path)
            self.assertIn("query parameter", resp["message"], path)
        self.assertEqual(self.c.balance(a), 3)

    def test_a_query_parameter_without_a_value(self):
        """"?limit" names a parameter and gives it no value: refused, not
        read as absent (which would answer about another page or time)."""
        w, a = self.acct("w", None), self.acct("a")
        self.fill(w, a, 3, "x")
        for path, query in (("entries", "?limit"), ("entries", "?after_seq"),
                            ("entries", "?limit=1&after_seq"), ("balance", "?at")):
            status, resp = self.c.get("/v1/accounts/%s/%s%s" % (a, path, query))
            self.assert_error(status, resp, 400, "invalid_request", query)
            self.assertIn("has no value", resp["message"], query)
        status, resp = self.c.get("/v1/accounts/%s/entries?limit=1&after_seq=1" % a)
        self.assertEqual((status, [e["seq"] for e in resp["entries"]]), (200, [2]))

    def test_unknown_account(self):
        missing = self.uid("missing")
        status, resp = self.c.get("/v1/accounts/%s/entries" % missing)
        self.assert_error(status, resp, 404, "account_not_found", "entries")
        status, resp = self.c.get("/v1/accounts/%s/entries?after_seq=0&limit=5" % missing)
        self.assert_error(status, resp, 404, "account_not_found", "entries with params")
        status, resp = self.c.get("/v1/accounts/%s/balance" % missing)
        self.assert_error(status, resp, 404, "account_not_found", "balance")
        status, resp = self.c.get("/v1/accounts/%s/balance?at=2021-01-01T00:00:00Z" % missing)
        self.assert_error(status, resp, 404, "account_not_found", "balance at")


class BalanceAtTest(HistoryTestCase):
    def test_balance_at(self):
        w, a, b = self.acct("w", None), self.acct("a"), self.acct("b")
        self.ok(self.uid("t1"), w, a, 100, effective_at="2022-03-01T10:00:00Z")
        self.ok(self.uid("t2"), a, b, 30, effective_at="2022-03-02T10:00:00.250000Z")
        self.ok(self.uid("t3"), w, a, 5, effective_at="2022-03-03T10:00:00Z")
        cases = [
            ("before the first entry", "2022-03-01T09:59:59.999999Z", ("0", 0)),
            ("long before", "1999-01-01T00:00:00Z", ("0", 0)),
            ("at the first entry", "2022-03-01T10:00:00Z", ("100", 1)),
            ("first entry, other offset", "2022-03-01T11:00:00+01:00", ("100", 1)),
            ("between", "2022-03-02T00:00:00Z", ("100", 1)),
            ("1us before the second", "2022-03-02T10:00:00.249999Z", ("100", 1)),
            ("at the second", "2022-03-02T10:00:00.25Z", ("70", 2)),
            ("at the second, offset", "2022-03-02T04:30:00.25-05:30", ("70", 2)),
            ("between 2 and 3", "2022-03-03T09:00:00Z", ("70", 2)),
            ("1us before the last", "2022-03-03T09:59:59.999999Z", ("70", 2)),
            ("at the third", "2022-03-03T10:00:00Z", ("75", 3)),
            ("after the last", "2024-01-01T00:00:00Z", ("75", 3)),
        ]
        for what, at, expected in cases:
            self.assertEqual(self.balance_at(a, at), expected, what)
        self.assertEqual(self.balance_at(a), ("75", 3), "without at")
        self.assertEqual(self.balance_at(w, "2022-03-03T10:00:00Z"), ("-105", 2))
        self.assertEqual(self.balance_at(w, "2022-03-02T10:00:00.25Z"), ("-100", 1))
        self.assertEqual(self.balance_at(b, "2022-03-02T10:00:00.25Z"), ("30", 1))
        self.assertEqual(self.balance_at(b, "2022-03-02T10:00:00.2Z"), ("0", 0))
        # A current transfer moves the current balance, not the past ones.
        self.ok(self.uid("t4"), a, b, 75)
        self.assertEqual(self.balance_at(a), ("0", 4))
        self.assertEqual(self.balance_at(a, "2022-03-03T10:00:00Z"), ("75", 3))
        now = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=5)
        self.assertEqual(self.balance_at(a, now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")), ("0", 4))

    def test_same_effective_at_gives_the_last_entry(self):
        w, a = self.acct("w", None), self.acct("a")
        for i, amount in enumerate((10, 20, 30)):
            self.ok(self.uid("t%d" % i), w, a, amount, effective_at="2022-05-05T05:05:05Z")
        self.assertEqual(self.balance_at(a, "2022-05-05T05:05:05Z"), ("60", 3))
        self.assertEqual(self.balance_at(a, "2022-05-05T05:05:04.999999Z"), ("0", 0))

    def test_matches_a_model_over_a_long_history(self):
        """balance?at= searches an account's entries by seq: checked against
        a model over enough entries for many steps of the search, with runs
        of equal effective_at, at every entry's instant and either side."""
        w, a = self.acct("w", None), self.acct("a")
        rng = random.Random(20261122)
        fmt = lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        us = lambda n: datetime.timedelta(microseconds=n)
        t = datetime.datetime(2021, 1, 1, tzinfo=datetime.timezone.utc)
        items, history, balance = [], [], 0
        for i in range(300):
            t += us(rng.choice((0, 0, 1, 250000, 3600 * 10**6)))
            amount = rng.randint(1, 1000)
            balance += amount
            items.append({"id": self.uid("m%d" % i), "from": w, "to": a, "amount": amount,
                          "effective_at": fmt(t)})
            history.append((t, balance, i + 1))
        status, resp = self.c.post("/v1/transfers/batch", {"transfers": items, "atomic": True})
        self.assertEqual(status, 200, resp)
        self.assertTrue(all(r["status"] == "posted" for r in resp["results"]), resp)

        def expected(at):
            last = ("0", 0)
            for when, bal, seq in history:
                if when <= at:
                    last = (str(bal), seq)
            return last

        probes = {history[0][0] - us(1), history[-1][0] + us(1)}
        for when, _, _ in history[::3]:
            probes.update((when - us(1), when, when + us(1)))
        for at in sorted(probes):
            self.assertEqual(self.balance_at(a, fmt(at)), expected(at), fmt(at))

    def test_unencoded_plus_in_offset(self):
        # "+05:30" typed into a URL without encoding arrives as a space.
        w, a = self.acct("w", None), self.acct("a")
        self.ok(self.uid("t1"), w, a, 9, effective_at="2022-06-01T10:00:00Z")
        status, resp = self.c.get("/v1/accounts/%s/balance?at=2022-06-01T15:30:00+05:30" % a)
        self.assertEqual((status, resp["balance"], resp["at"]),
                         (200, "9", "2022-06-01T10:00:00.000000Z"))
        status, resp = self.c.get("/v1/accounts/%s/balance?at=2022-06-01T15:29:59+05:30" % a)
        self.assertEqual((status, resp["balance"]), (200, "0"))

    def test_new_account_balance(self):
        a = self.acct("a")
        self.assertEqual(self.balance_at(a), ("0", 0))
        self.assertEqual(self.balance_at(a, "2022-01-01T00:00:00Z"), ("0", 0))

    def test_bad_at(self):
        w, a = self.acct("w", None), self.acct("a")
        self.ok(self.uid("t1"), w, a, 1, effective_at="2022-01-01T00:00:00Z")
        for at in ("yesterday", "2022-01-01", "2022-01-01T00:00:00", "2022-02-30T00:00:00Z",
                   "2022-01-01T00:00:00.1234567Z", "", "1640995200"):
            status, resp = self.c.get("/v1/accounts/%s/balance?at=%s" % (a, q(at)))
            self.assert_error(status, resp, 400, "invalid_request", "at=%r" % at)
        status, resp = self.c.get("/v1/accounts/%s/balance?when=2022-01-01T00:00:00Z" % a)
        self.assert_error(status, resp, 400, "invalid_request", "unknown parameter")
        status, resp = self.c.get("/v1/accounts/%s/balance?limit=5" % a)
        self.assert_error(status, resp, 400, "invalid_request", "entries parameter on balance")


if __name__ == "__main__":
    unittest.main()
