"""Transfers: POST /v1/transfers, POST /v1/transfers/batch, GET /v1/transfers/{id}
(SPEC sections 2, 3 and 6; issue #2 scope: no pending transfers, no mean cost)."""
import datetime
import json
import re
import time
import unittest
import urllib.parse

import harness

TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
I128_MAX = 2 ** 127 - 1
I128_MIN = -(2 ** 127)
RESULT_FIELDS = ("id", "status", "from", "to", "amount", "currency", "from_seq", "to_seq",
                 "from_balance", "to_balance", "created_at", "effective_at", "replayed")


def parse_time(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)


def utc(text):
    """An RFC 3339 text in the response form (UTC, 6 fraction digits, Z)."""
    t = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_plus(seconds):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LedgerTestCase(harness.LedgerdTestCase):
    """One ledgerd on a fresh schema per class; helpers for accounts and transfers."""

    def setUp(self):
        self._n = 0

    def next_id(self, what="t"):
        self._n += 1
        return self.uid("%s%d" % (what, self._n))

    def acct(self, suffix, currency="USD", min_balance="0"):
        id = self.uid(suffix)
        body = {"id": id, "currency": currency, "min_balance": min_balance}
        status, resp = self.c.post("/v1/accounts", body)
        self.assertEqual(status, 201, resp)
        return id

    def world(self, suffix="world", currency="USD"):
        return self.acct(suffix, currency, None)

    def ok(self, frm, to, amount, id=None, **kw):
        id = id or self.next_id()
        status, resp = self.c.transfer(id, frm, to, amount, **kw)
        self.assertEqual(status, 201, resp)
        return resp

    def get_account(self, id):
        status, resp = self.c.get("/v1/accounts/" + urllib.parse.quote(id, safe=""))
        self.assertEqual(status, 200, resp)
        return resp

    def snapshot(self, *ids):
        out = {}
        for id in ids:
            a = self.get_account(id)
            out[id] = (a["balance"], a["seq"], a["available"], a["pending_out"], a["pending_in"])
        return out

    def assert_no_transfer(self, id, what=""):
        status, body = self.c.get("/v1/transfers/" + urllib.parse.quote(id, safe=""))
        self.assert_error(status, body, 404, "transfer_not_found", "GET transfer %s %s" % (id, what))

    def refused(self, http_status, code, frm, to, amount, accounts=(), id=None, what="", **kw):
        """Sends a transfer that must fail with code; checks nothing changed."""
        id = id or self.next_id("r")
        before = self.snapshot(*accounts)
        status, resp = self.c.transfer(id, frm, to, amount, **kw)
        self.assert_error(status, resp, http_status, code, what or code)
        self.assertEqual(self.snapshot(*accounts), before, "%s changed state" % (what or code))
        return id

    def batch(self, transfers, atomic, expect_status=200):
        status, resp = self.c.post("/v1/transfers/batch",
                                   {"transfers": transfers, "atomic": atomic})
        self.assertEqual(status, expect_status, resp)
        if expect_status == 200:
            self.assertEqual(len(resp["results"]), len(transfers), resp)
        return resp

    @staticmethod
    def item(id, frm, to, amount, **kw):
        d = {"id": id, "from": frm, "to": to, "amount": amount}
        d.update(kw)
        return d


class TransferResultTest(LedgerTestCase):
    def test_posted_result_fields(self):
        w, a, b = self.world(), self.acct("a"), self.acct("b")
        id = self.uid("first")
        before = datetime.datetime.now(datetime.timezone.utc)
        status, r = self.c.transfer(id, w, a, 500)
        after = datetime.datetime.now(datetime.timezone.utc)
        self.assertEqual(status, 201, r)
        for f in RESULT_FIELDS:
            self.assertIn(f, r)
        self.assertEqual(r["id"], id)
        self.assertEqual(r["status"], "posted")
        self.assertEqual(r["from"], w)
        self.assertEqual(r["to"], a)
        self.assertEqual(r["amount"], "500")
        self.assertEqual(r["currency"], "USD")
        self.assertEqual((r["from_seq"], r["to_seq"]), (1, 1))
        self.assertEqual(r["from_balance"], "-500")
        self.assertEqual(r["to_balance"], "500")
        self.assertIs(r["replayed"], False)
        self.assertRegex(r["created_at"], TIME_RE)
        self.assertRegex(r["effective_at"], TIME_RE)
        slack = datetime.timedelta(seconds=2)
        for f in ("created_at", "effective_at"):
            self.assertGreaterEqual(parse_time(r[f]), before - slack, f)
            self.assertLessEqual(parse_time(r[f]), after + slack, f)
        # A second transfer: the debited side's seq is its own count of entries.
        status, r2 = self.c.transfer(self.uid("second"), a, b, "200", currency="USD")
        self.assertEqual(status, 201, r2)
        self.assertEqual((r2["from_seq"], r2["to_seq"]), (2, 1))
        self.assertEqual((r2["from_balance"], r2["to_balance"]), ("300", "200"))
        self.assertEqual(r2["amount"], "200")
        acc = self.get_account(a)
        self.assertEqual((acc["balance"], acc["available"], acc["seq"]), ("300", "300", 2))
        acc = self.get_account(w)
        self.assertEqual((acc["balance"], acc["seq"]), ("-500", 1))

    def test_get_transfer(self):
        w, a = self.world(), self.acct("a")
        r = self.ok(w, a, "77", id=self.uid("t"))
        status, g = self.c.get("/v1/transfers/" + r["id"])
        self.assertEqual(status, 200, g)
        self.assertEqual(g["status"], "posted")
        for f in ("id", "from", "to", "amount", "currency", "from_seq", "to_seq", "from_balance",
                  "to_balance", "created_at", "effective_at"):
            self.assertEqual(g[f], r[f], f)
        # Later transfers do not change what GET says about this one.
        self.ok(w, a, 3)
        status, g2 = self.c.get("/v1/transfers/" + r["id"])
        self.assertEqual(g2["to_balance"], "77")
        self.assertEqual(g2["to_seq"], 1)

    def test_get_unknown_transfer(self):
        self.assert_no_transfer(self.uid("nothing"))
        status, body = self.c.get("/v1/transfers/bad%20id")
        self.assert_error(status, body, 400, "invalid_request", "bad transfer id in path")

    def test_effective_at_offsets_and_fractions(self):
        w, a = self.world(), self.acct("a")
        cases = [
            ("2020-01-01T10:00:00+05:30", "2020-01-01T04:30:00.000000Z"),
            ("2020-01-01T04:30:00.123456Z", "2020-01-01T04:30:00.123456Z"),
            ("2020-01-01T04:30:00.5Z", "2020-01-01T04:30:00.500000Z"),
            ("2020-01-01T00:00:00.9-05:00", "2020-01-01T05:00:00.900000Z"),
            ("2020-01-02T00:00:00+00:00", "2020-01-02T00:00:00.000000Z"),
            ("2020-01-02T01:00:00-00:00", "2020-01-02T01:00:00.000000Z"),
            ("2020-01-02t02:00:00z", "2020-01-02T02:00:00.000000Z"),
            ("2020-01-03T00:00:00+14:00", "2020-01-02T10:00:00.000000Z"),
        ]
        for given, expected in cases:
            r = self.ok(w, a, 1, effective_at=given)
            self.assertEqual(r["effective_at"], expected, given)
            status, g = self.c.get("/v1/transfers/" + r["id"])
            self.assertEqual(g["effective_at"], expected, given)
        entries = self.c.entries(a)
        self.assertEqual([e["effective_at"] for e in entries], [e for _, e in cases])

    def test_leap_second_effective_at(self):
        # RFC 3339 allows second 60 (a leap second); SPEC: any RFC 3339 time is accepted.
        w, a = self.world(), self.acct("a")
        status, r = self.c.transfer(self.uid("t"), w, a, 1, effective_at="2016-12-31T23:59:60Z")
        self.assertEqual(status, 201, r)
        self.assertIn(r["effective_at"], ("2016-12-31T23:59:59.999999Z",
                                          "2016-12-31T23:59:59.000000Z",
                                          "2017-01-01T00:00:00.000000Z"))
        status, b = self.c.get("/v1/accounts/%s/balance?at=2016-12-31T23:59:60.5Z" % a)
        self.assertEqual(status, 200, b)

    def test_bad_effective_at(self):
        w, a = self.world(), self.acct("a")
        for bad in ("2020-01-01", "2020-01-01T00:00:00", "2020-13-01T00:00:00Z",
                    "2020-02-30T00:00:00Z", "2020-01-01T00:00:00.1234567Z", "yesterday",
                    "2020-01-01T00:00:60Z",  # second 60 only ends a UTC month
                    "", 1577836800, None):
            self.refused(400, "invalid_request", w, a, 1, accounts=(w, a), effective_at=bad,
                         what="effective_at %r" % (bad,))

    def test_default_effective_at_is_commit_time_after_import(self):
        w, a = self.world(), self.acct("a")
        self.ok(w, a, 5, effective_at="2021-06-01T00:00:00Z")
        before = datetime.datetime.now(datetime.timezone.utc)
        r = self.ok(w, a, 6)
        after = datetime.datetime.now(datetime.timezone.utc)
        t = parse_time(r["effective_at"])
        self.assertGreaterEqual(t, before - datetime.timedelta(seconds=2))
        self.assertLessEqual(t, after + datetime.timedelta(seconds=2))

    def test_imports_in_order(self):
        w, a, b = self.world(), self.acct("a"), self.acct("b")
        times = ["2019-03-01T00:00:00Z", "2019-03-01T00:00:00Z", "2019-03-02T12:00:00.25Z",
                 "2022-01-01T00:00:00+02:00"]
        results = [self.ok(w, a, 10, effective_at=t) for t in times]
        results.append(self.ok(a, b, 15, effective_at="2022-01-01T00:00:00Z"))
        self.assertEqual([r["effective_at"] for r in results],
                         [utc(t) for t in times] + ["2022-01-01T00:00:00.000000Z"])
        self.assertEqual(self.get_account(a)["balance"], "25")
        self.assertEqual(self.get_account(b)["balance"], "15")

    def test_pending_and_cost_fields_refused_where_they_do_not_apply(self):
        w, a = self.world(), self.acct("a")
        for what, kw in (("timeout_s without pending", {"timeout_s": 30}),
                         ("timeout_s zero", {"pending": True, "timeout_s": 0}),
                         ("timeout_s text", {"pending": True, "timeout_s": "30"}),
                         ("pending not a bool", {"pending": "yes"}),
                         ("unit_cost to an account tracking no cost", {"unit_cost": {"USD": "1.5"}}),
                         ("unit_cost not an object", {"unit_cost": "1.5"}),
                         ("unit_cost negative", {"unit_cost": {"USD": "-1"}}),
                         ("unit_cost 19 fraction digits",
                          {"unit_cost": {"USD": "1.0000000000000000001"}})):
            id = self.refused(400, "invalid_request", w, a, 10, accounts=(w, a), what=what, **kw)
            self.assert_no_transfer(id, what)
        # pending: false is an ordinary posted transfer.
        r = self.ok(w, a, 10, pending=False)
        self.assertEqual(r["status"], "posted")
        # post/void of a posted transfer or an unknown id: not a pending transfer.
        for action in ("post", "void"):
            for id in (r["id"], self.uid("nothing")):
                status, body = self.c.post("/v1/transfers/%s/%s" % (id, action), {})
                self.assert_error(status, body, 404, "pending_not_found", action + " " + id)
        self.assertEqual(self.get_account(a)["balance"], "10")


class IdempotencyTest(LedgerTestCase):
    def test_replay_returns_original(self):
        w, a = self.world(), self.acct("a")
        id = self.uid("t")
        status, first = self.c.transfer(id, w, a, 500, metadata={"order": 1})
        self.assertEqual(status, 201, first)
        self.ok(w, a, 1)  # a later transfer: the replay still shows the original figures
        entries_a, entries_w = len(self.c.entries(a)), len(self.c.entries(w))
        before = self.snapshot(w, a)
        expected = dict(first, replayed=True)
        variants = [
            ("same body", {"amount": 500, "metadata": {"order": 1}}),
            ("amount as string", {"amount": "500"}),
            ("amount with leading zeros", {"amount": "000500"}),
            ("different metadata", {"amount": 500, "metadata": {"order": 2, "x": "y"}}),
            ("no metadata", {"amount": 500}),
            ("effective_at that would be backdated", {"amount": 500,
                                                      "effective_at": "2000-01-01T00:00:00Z"}),
            ("effective_at in the future", {"amount": "500", "effective_at": now_plus(3600)}),
            ("failing expect", {"amount": 500, "expect": {"from_seq": 99, "to_seq": 99}}),
            ("explicit currency", {"amount": 500, "currency": "USD"}),
            ("explicit pending false", {"amount": 500, "pending": False}),
        ]
        for what, kw in variants:
            body = {"id": id, "from": w, "to": a}
            body.update(kw)
            status, again = self.c.post("/v1/transfers", body)
            self.assertEqual(status, 200, (what, again))
            self.assertEqual(again, expected, what)
        self.assertEqual(self.snapshot(w, a), before)
        self.assertEqual(len(self.c.entries(a)), entries_a)
        self.assertEqual(len(self.c.entries(w)), entries_w)

    def test_replay_large_amount_as_number_and_string(self):
        w1, w2 = self.world("w1"), self.world("w2")
        id = self.uid("t")
        big = 2 ** 63 - 1
        status, first = self.c.transfer(id, w1, w2, big)
        self.assertEqual(status, 201, first)
        self.assertEqual(first["amount"], str(big))
        status, again = self.c.transfer(id, w1, w2, str(big))
        self.assertEqual(status, 200, again)
        self.assertIs(again["replayed"], True)
        self.assertEqual(dict(again, replayed=False), first)

    def test_id_conflict(self):
        w, a, b = self.world(), self.acct("a"), self.acct("b")
        e = self.acct("eur", currency="EUR")
        id = self.uid("t")
        first = self.ok(w, a, 500, id=id)
        cases = [
            ("different from", b, a, 500, {}),
            ("different to", w, b, 500, {}),
            ("different amount", w, a, 501, {}),
            ("different amount as string", w, a, "499", {}),
            ("different currency", w, a, 500, {"currency": "EUR"}),
            ("to in another currency", w, e, 500, {}),
            ("to missing", w, self.uid("missing"), 500, {}),
        ]
        for what, frm, to, amount, kw in cases:
            self.refused(409, "id_conflict", frm, to, amount, accounts=(w, a, b, e), id=id,
                         what=what, **kw)
        status, g = self.c.get("/v1/transfers/" + id)
        self.assertEqual((g["from"], g["to"], g["amount"]), (w, a, "500"))
        self.assertEqual(g["to_balance"], first["to_balance"])

    def test_rejected_id_is_judged_afresh(self):
        w, a, b = self.world(), self.acct("a"), self.acct("b")
        id = self.uid("t")
        self.refused(422, "insufficient_funds", a, b, 100, accounts=(a, b), id=id)
        self.assert_no_transfer(id, "after insufficient_funds")
        # Not stored: the same id with another body is no id_conflict.
        self.refused(404, "account_not_found", a, self.uid("nobody"), 7, accounts=(a,), id=id)
        self.ok(w, a, 100)
        status, r = self.c.transfer(id, a, b, 100)
        self.assertEqual(status, 201, r)
        self.assertIs(r["replayed"], False)
        self.assertEqual(r["to_balance"], "100")


class TransferErrorsTest(LedgerTestCase):
    def test_insufficient_funds(self):
        w, a, b = self.world(), self.acct("a"), self.acct("b")
        self.refused(422, "insufficient_funds", a, b, 1, accounts=(a, b), what="empty account")
        self.ok(w, a, 100)
        self.refused(422, "insufficient_funds", a, b, 101, accounts=(a, b), what="one past")
        r = self.ok(a, b, 100)
        self.assertEqual(r["from_balance"], "0")
        self.refused(422, "insufficient_funds", a, b, "1", accounts=(a, b), what="spent")

    def test_overdraft_to_negative_min_balance(self):
        w, o, x = self.world(), self.acct("o", min_balance="-100"), self.acct("x")
        r = self.ok(o, x, 60)
        self.assertEqual(r["from_balance"], "-60")
        r = self.ok(o, x, 40)
        self.assertEqual(r["from_balance"], "-100")
        self.refused(422, "insufficient_funds", o, x, 1, accounts=(o, x), what="one past limit")
        self.ok(w, o, 10)
        self.refused(422, "insufficient_funds", o, x, 11, accounts=(o, x), what="11 of 10")
        r = self.ok(o, x, 10)
        self.assertEqual(r["from_balance"], "-100")
        acc = self.get_account(o)
        self.assertEqual((acc["balance"], acc["available"]), ("-100", "-100"))

    def test_positive_min_balance(self):
        w, p, x = self.world(), self.acct("p", min_balance="50"), self.acct("x")
        self.ok(w, p, 100)
        self.refused(422, "insufficient_funds", p, x, 51, accounts=(p, x))
        r = self.ok(p, x, 50)
        self.assertEqual(r["from_balance"], "50")

    def test_account_not_found(self):
        w, a = self.world(), self.acct("a")
        missing = self.uid("missing")
        self.refused(404, "account_not_found", missing, a, 1, accounts=(a,), what="from missing")
        self.refused(404, "account_not_found", w, missing, 1, accounts=(w,), what="to missing")
        self.refused(404, "account_not_found", missing, self.uid("missing2"), 1,
                     what="both missing")

    def test_same_account(self):
        w, a = self.world(), self.acct("a")
        self.ok(w, a, 10)
        self.refused(422, "same_account", a, a, 1, accounts=(a,))
        self.refused(422, "same_account", w, w, 1, accounts=(w,), what="unbounded")

    def test_currency_mismatch(self):
        w, a = self.world(), self.acct("a")
        we, e = self.world("weur", "EUR"), self.acct("e", "EUR")
        self.ok(w, a, 10)
        self.refused(422, "currency_mismatch", a, e, 1, accounts=(a, e), what="accounts differ")
        self.refused(422, "currency_mismatch", we, a, 1, accounts=(we, a), what="world EUR to USD")
        self.refused(422, "currency_mismatch", w, a, 1, accounts=(w, a), currency="EUR",
                     what="currency field differs")
        self.refused(422, "currency_mismatch", we, e, 1, accounts=(we, e), currency="USD",
                     what="currency field differs (EUR)")
        r = self.ok(we, e, 5, currency="EUR")
        self.assertEqual(r["currency"], "EUR")

    def test_transfer_syntax_errors(self):
        w, a = self.world(), self.acct("a")
        cases = [
            ("unknown field", {"id": "x", "from": w, "to": a, "amount": 1, "memo": "m"}),
            ("missing id", {"from": w, "to": a, "amount": 1}),
            ("missing from", {"id": "x", "to": a, "amount": 1}),
            ("missing to", {"id": "x", "from": w, "amount": 1}),
            ("missing amount", {"id": "x", "from": w, "to": a}),
            ("bad id", {"id": "bad id", "from": w, "to": a, "amount": 1}),
            ("id too long", {"id": "t" * 65, "from": w, "to": a, "amount": 1}),
            ("id number", {"id": 5, "from": w, "to": a, "amount": 1}),
            ("from number", {"id": "x", "from": 5, "to": a, "amount": 1}),
            ("bad currency", {"id": "x", "from": w, "to": a, "amount": 1, "currency": "usd"}),
            ("metadata not object", {"id": "x", "from": w, "to": a, "amount": 1,
                                     "metadata": [1]}),
            ("metadata too large", {"id": "x", "from": w, "to": a, "amount": 1,
                                    "metadata": {"k": "v" * 4100}}),
            ("expect not object", {"id": "x", "from": w, "to": a, "amount": 1, "expect": 3}),
            ("expect unknown key", {"id": "x", "from": w, "to": a, "amount": 1,
                                    "expect": {"seq": 0}}),
            ("expect string", {"id": "x", "from": w, "to": a, "amount": 1,
                               "expect": {"from_seq": "0"}}),
            ("pending not bool", {"id": "x", "from": w, "to": a, "amount": 1, "pending": "no"}),
        ]
        for what, body in cases:
            before = self.snapshot(w, a)
            status, resp = self.c.post("/v1/transfers", body)
            self.assert_error(status, resp, 400, "invalid_request", what)
            self.assertEqual(self.snapshot(w, a), before, what)
        self.assert_no_transfer("x")
        for what, raw in (("malformed", '{"id": "x", "from": '), ("empty", ""),
                          ("array", "[]"), ("trailing", '{"id":"x"} {}')):
            status, resp = self.c.post("/v1/transfers", raw=raw)
            self.assert_error(status, resp, 400, "invalid_request", what)
        self.assert_no_transfer("x")
        # Valid JSON that PostgreSQL cannot store: the message says so.
        before = self.snapshot(w, a)
        status, resp = self.c.post("/v1/transfers", {"id": "x", "from": w, "to": a, "amount": 1,
                                                     "metadata": {"note": "a\u0000b"}})
        self.assert_error(status, resp, 400, "invalid_request", "\\u0000 in metadata")
        self.assertIn("\\u0000", resp["message"])
        self.assertNotIn("malformed", resp["message"])
        self.assertEqual(self.snapshot(w, a), before)
        self.assert_no_transfer("x")

    def test_invalid_amount(self):
        w, a = self.world(), self.acct("a")
        bad = [0, -1, 1.5, "abc", str(2 ** 127), True, False, "0", "-1", "-0", "",
               "1.5", "1e3", "+5", " 5", "5 ", "0x10", str(2 ** 128),
               "-" + str(2 ** 127), 2 ** 127, 2 ** 128, -(2 ** 63) - 1, 10 ** 40]
        for amount in bad:
            id = self.refused(400, "invalid_amount", w, a, amount, accounts=(w, a),
                              what="amount %r" % (amount,))
            self.assert_no_transfer(id, "amount %r" % (amount,))

    def test_amount_edges(self):
        w1, w2 = self.world("w1"), self.world("w2")
        r = self.ok(w1, w2, str(I128_MAX))
        self.assertEqual(r["amount"], str(I128_MAX))
        self.assertEqual(r["from_balance"], str(-I128_MAX))
        self.assertEqual(r["to_balance"], str(I128_MAX))
        status, g = self.c.get("/v1/transfers/" + r["id"])
        self.assertEqual(g["amount"], str(I128_MAX))
        self.assertEqual(self.get_account(w2)["balance"], str(I128_MAX))
        # JSON numbers on both sides of 64 bits, up to the largest amount.
        w3, w4 = self.world("w3"), self.world("w4")
        self.assertEqual(self.ok(w3, w4, 2 ** 63 - 1)["amount"], str(2 ** 63 - 1))
        self.assertEqual(self.ok(w3, w4, str(2 ** 63))["amount"], str(2 ** 63))
        self.assertEqual(self.ok(w3, w4, 2 ** 63)["amount"], str(2 ** 63))
        self.assertEqual(self.get_account(w4)["balance"], str(3 * 2 ** 63 - 1))
        w5, w6 = self.world("w5"), self.world("w6")
        self.assertEqual(self.ok(w5, w6, I128_MAX)["amount"], str(I128_MAX))
        # Leading zeros are still decimal digits.
        self.assertEqual(self.ok(w3, w4, "007")["amount"], "7")

    def test_integers_beyond_64_bits_are_amounts_only(self):
        big = 2 ** 100
        w, a = self.world("w"), self.acct("a")
        status, acc = self.c.post("/v1/accounts", {"id": self.uid("deep"), "currency": "USD",
                                                   "min_balance": -big})
        self.assertEqual((status, acc["min_balance"]), (201, str(-big)))
        resp = self.batch([self.item(self.uid("b1"), w, a, big),
                           self.item(self.uid("b2"), w, a, 2 ** 127)], atomic=False)
        self.assertEqual([r["status"] for r in resp["results"]], ["posted", "rejected"])
        self.assertEqual((resp["results"][0]["amount"], resp["results"][1]["error"]),
                         (str(big), "invalid_amount"))
        p = self.ok(w, a, big + 5, pending=True)
        status, posted = self.c.post("/v1/transfers/%s/post" % p["id"], {"amount": big + 1})
        self.assertEqual((status, posted["posted_amount"]), (200, str(big + 1)))
        self.assertEqual(self.get_account(a)["balance"], str(2 * big + 1))
        # A number too large even for a double is still an amount's error.
        status, body = self.c.post("/v1/transfers", raw='{"id": "%s", "from": "%s", "to": "%s",'
                                   ' "amount": 1e400}' % (self.uid("huge"), w, a))
        self.assert_error(status, body, 400, "invalid_amount")
        # Anywhere else such an integer is refused, and nothing is applied.
        for what, extra in [("metadata", {"metadata": {"n": big}}),
                            ("metadata key named amount", {"metadata": {"amount": big}}),
                            ("timeout_s", {"pending": True, "timeout_s": big}),
                            ("expect", {"expect": {"from_seq": big}})]:
            self.refused(400, "invalid_request", w, a, 1, accounts=(w, a), what=what, **extra)

    def test_amount_overflow_credit(self):
        w1, w2 = self.world("w1", "OVA"), self.world("w2", "OVA")
        a = self.acct("a", "OVA", None)
        self.ok(w1, a, str(I128_MAX))
        self.refused(422, "amount_overflow", w2, a, 1, accounts=(w2, a))
        self.assertEqual(self.get_account(a)["balance"], str(I128_MAX))

    def test_amount_overflow_debit(self):
        w, x, y = self.world("w", "OVB"), self.acct("x", "OVB"), self.acct("y", "OVB")
        self.ok(w, x, str(I128_MAX))
        self.refused(422, "amount_overflow", w, y, str(I128_MAX), accounts=(w, y),
                     what="second 2^127-1")
        # Exactly down to -2^127 is representable.
        r = self.ok(w, y, 1)
        self.assertEqual(r["from_balance"], str(I128_MIN))
        self.assertEqual(self.get_account(w)["balance"], str(I128_MIN))
        self.refused(422, "amount_overflow", w, y, 1, accounts=(w, y), what="past -2^127")

    def test_amount_overflow_of_available(self):
        # available = balance - pending_out is a figure of the account too,
        # even of one without a floor.
        w, x, y = self.world("w", "OVC"), self.acct("x", "OVC"), self.acct("y", "OVC")
        self.ok(w, x, str(I128_MAX - 1))
        self.refused(422, "amount_overflow", w, y, 3, accounts=(w, y), pending=True,
                     what="available past -2^127")
        r = self.ok(w, y, 2, pending=True)
        self.assertEqual(r["status"], "pending")
        acc = self.get_account(w)
        self.assertEqual((acc["balance"], acc["pending_out"], acc["available"]),
                         (str(-(I128_MAX - 1)), "2", str(I128_MIN)))
        self.refused(422, "amount_overflow", w, y, 1, accounts=(w, y), what="posted, same bound")

    def test_amount_overflow_of_incoming(self):
        # balance + pending_in, what an account holds once its pending
        # credits are posted, must fit too: a reservation accepted can
        # always be posted in full.
        w, a = self.world("w", "OVD"), self.acct("a", "OVD")
        self.ok(w, a, str(I128_MAX - 10))
        self.refused(422, "amount_overflow", w, a, 11, accounts=(w, a), pending=True,
                     what="pending credit past 2^127-1")
        p = self.ok(w, a, 10, pending=True)
        self.refused(422, "amount_overflow", w, a, 1, accounts=(w, a),
                     what="posted credit past balance + pending_in")
        status, posted = self.c.post("/v1/transfers/%s/post" % p["id"], {})
        self.assertEqual((status, posted["status"], posted["to_balance"]),
                         (200, "posted", str(I128_MAX)))

    def test_seq_mismatch(self):
        w, a, b = self.world(), self.acct("a"), self.acct("b")
        self.ok(w, a, 100)  # w seq 1, a seq 1
        self.refused(409, "seq_mismatch", a, b, 1, accounts=(a, b),
                     expect={"from_seq": 0}, what="from_seq stale")
        self.refused(409, "seq_mismatch", a, b, 1, accounts=(a, b),
                     expect={"from_seq": 2}, what="from_seq ahead")
        self.refused(409, "seq_mismatch", a, b, 1, accounts=(a, b),
                     expect={"to_seq": 1}, what="to_seq wrong")
        self.refused(409, "seq_mismatch", a, b, 1, accounts=(a, b),
                     expect={"from_seq": 1, "to_seq": 5}, what="one of two wrong")
        r = self.ok(a, b, 1, expect={"from_seq": 1, "to_seq": 0})
        self.assertEqual((r["from_seq"], r["to_seq"]), (2, 1))
        r = self.ok(a, b, 1, expect={"from_seq": 2})
        r = self.ok(a, b, 1, expect={"to_seq": 2})
        r = self.ok(a, b, 1, expect={})
        self.assertEqual((r["from_seq"], r["to_seq"]), (5, 4))

    def test_backdated(self):
        w, a, b = self.world(), self.acct("a"), self.acct("b")
        self.ok(w, a, 100, effective_at="2023-05-01T00:00:00Z")
        self.refused(422, "backdated", a, b, 1, accounts=(a, b),
                     effective_at="2023-04-30T23:59:59.999999Z", what="before from's last")
        self.refused(422, "backdated", b, a, 1, accounts=(b, a),
                     effective_at="2023-04-01T00:00:00Z", what="before to's last")
        self.refused(422, "backdated", a, b, 1, accounts=(a, b),
                     effective_at="2023-05-01T05:00:00+06:00", what="earlier via offset")
        self.refused(422, "backdated", a, b, 1, accounts=(a, b),
                     effective_at=now_plus(3600), what="in the future")
        self.refused(422, "backdated", w, b, 1, accounts=(w, b),
                     effective_at=now_plus(86400 * 365), what="future, fresh account")
        # Equal to the last entry is allowed; a later transfer without effective_at too.
        self.ok(a, b, 1, effective_at="2023-05-01T00:00:00Z")
        self.ok(a, b, 1)
        self.refused(422, "backdated", a, b, 1, accounts=(a, b),
                     effective_at="2023-06-01T00:00:00Z", what="after a current-time entry")


class OrderOfChecksTest(LedgerTestCase):
    """SPEC section 3: when several errors apply, the first in the order wins."""

    def test_syntax_before_existing_id(self):
        w, a = self.world(), self.acct("a")
        id = self.ok(w, a, 5)["id"]
        self.refused(400, "invalid_amount", w, a, 0, accounts=(w, a), id=id)
        self.refused(400, "invalid_request", w, a, 5, accounts=(w, a), id=id,
                     effective_at="not a time")

    def test_id_conflict_before_same_account(self):
        w, a = self.world(), self.acct("a")
        id = self.ok(w, a, 5)["id"]
        self.refused(409, "id_conflict", a, a, 5, accounts=(w, a), id=id)

    def test_replay_before_later_checks(self):
        # An identical retry is a replay even if the accounts changed since.
        w, a, b = self.world(), self.acct("a"), self.acct("b")
        self.ok(w, a, 5)
        id = self.ok(a, b, 5)["id"]  # a is now empty
        status, r = self.c.transfer(id, a, b, 5)
        self.assertEqual(status, 200, r)
        self.assertIs(r["replayed"], True)

    def test_same_account_before_account_not_found(self):
        missing = self.uid("missing")
        self.refused(422, "same_account", missing, missing, 5)

    def test_account_not_found_before_currency_mismatch(self):
        a = self.acct("a")
        missing = self.uid("missing")
        self.refused(404, "account_not_found", a, missing, 5, accounts=(a,), currency="EUR")
        self.refused(404, "account_not_found", missing, a, 5, accounts=(a,), currency="EUR")

    def test_currency_mismatch_before_seq_mismatch(self):
        w, e = self.world(), self.acct("e", "EUR")
        self.refused(422, "currency_mismatch", w, e, 5, accounts=(w, e),
                     expect={"from_seq": 7, "to_seq": 7})

    def test_seq_mismatch_before_backdated(self):
        w, a = self.world(), self.acct("a")
        self.refused(409, "seq_mismatch", w, a, 5, accounts=(w, a), expect={"to_seq": 3},
                     effective_at=now_plus(3600))

    def test_backdated_before_amount_overflow(self):
        w1, w2 = self.world("w1", "OVC"), self.world("w2", "OVC")
        a = self.acct("a", "OVC", None)
        self.ok(w1, a, str(I128_MAX))
        self.refused(422, "backdated", w2, a, 1, accounts=(w2, a), effective_at=now_plus(3600))

    def test_backdated_before_insufficient_funds(self):
        a, b = self.acct("a"), self.acct("b")
        self.refused(422, "backdated", a, b, 5, accounts=(a, b), effective_at=now_plus(3600))

    def test_seq_mismatch_before_insufficient_funds(self):
        a, b = self.acct("a"), self.acct("b")
        self.refused(409, "seq_mismatch", a, b, 5, accounts=(a, b), expect={"from_seq": 1})

    def test_amount_overflow_before_insufficient_funds(self):
        # Credit side overflows while the debited side lacks the funds.
        w = self.world("w", "OVD")
        full = self.acct("full", "OVD", None)
        poor = self.acct("poor", "OVD")
        self.ok(w, full, str(I128_MAX))
        self.refused(422, "amount_overflow", poor, full, 5, accounts=(poor, full),
                     what="credit overflow, debit insufficient")
        # Debit side overflows below -2^127 and is below min_balance too.
        deep = self.acct("deep", "OVD", str(I128_MIN))
        sink = self.acct("sink", "OVD", None)
        self.ok(deep, sink, str(I128_MAX))
        self.refused(422, "amount_overflow", deep, sink, 2, accounts=(deep, sink),
                     what="debit overflow, below min_balance")


class BatchTest(LedgerTestCase):
    def test_atomic_failure_applies_nothing(self):
        w, a, b = self.world(), self.acct("a"), self.acct("b")
        self.ok(w, a, 100)
        before = self.snapshot(w, a, b)
        ids = [self.uid("i%d" % i) for i in range(4)]
        items = [self.item(ids[0], w, a, 10), self.item(ids[1], a, b, 50),
                 self.item(ids[2], a, b, 500), self.item(ids[3], w, b, 1)]
        resp = self.batch(items, True)
        statuses = [(r["status"], r.get("error")) for r in resp["results"]]
        self.assertEqual(statuses, [("rejected", "batch_failed"), ("rejected", "batch_failed"),
                                    ("rejected", "insufficient_funds"),
                                    ("rejected", "batch_failed")])
        for r, id in zip(resp["results"], ids):
            self.assertEqual(r.get("id", id), id)
        self.assertEqual(self.snapshot(w, a, b), before)
        for id in ids:
            self.assert_no_transfer(id, "after failed atomic batch")
        # Not stored: the good ones may be sent again, alone, and apply.
        r = self.ok(w, a, 10, id=ids[0])
        self.assertIs(r["replayed"], False)
        self.assertEqual(r["to_balance"], "110")

    def test_atomic_success(self):
        w, a, b = self.world(), self.acct("a"), self.acct("b")
        items = [self.item(self.uid("i0"), w, a, 30), self.item(self.uid("i1"), a, b, "20"),
                 self.item(self.uid("i2"), a, b, 10)]
        resp = self.batch(items, True)
        res = resp["results"]
        self.assertEqual([r["status"] for r in res], ["posted"] * 3)
        self.assertEqual([r["id"] for r in res], [i["id"] for i in items])
        self.assertEqual([r["amount"] for r in res], ["30", "20", "10"])
        self.assertEqual([(r["from_seq"], r["to_seq"]) for r in res], [(1, 1), (2, 1), (3, 2)])
        self.assertEqual([r["to_balance"] for r in res], ["30", "20", "30"])
        self.assertEqual([r["replayed"] for r in res], [False] * 3)
        self.assertEqual(self.get_account(a)["balance"], "0")
        self.assertEqual(self.get_account(b)["balance"], "30")
        status, g = self.c.get("/v1/transfers/" + self.uid("i1"))
        self.assertEqual(status, 200, g)
        self.assertEqual(g["status"], "posted")

    def test_non_atomic_each_alone(self):
        w, a, b = self.world(), self.acct("a"), self.acct("b")
        e = self.acct("e", "EUR")
        self.ok(w, a, 100)
        ids = [self.uid("i%d" % i) for i in range(6)]
        items = [self.item(ids[0], a, b, 40), self.item(ids[1], a, b, 100),
                 self.item(ids[2], a, e, 1), self.item(ids[3], a, b, 0),
                 self.item(ids[4], a, self.uid("missing"), 1), self.item(ids[5], a, b, 60)]
        resp = self.batch(items, False)
        got = [(r["status"], r.get("error")) for r in resp["results"]]
        self.assertEqual(got, [("posted", None), ("rejected", "insufficient_funds"),
                               ("rejected", "currency_mismatch"), ("rejected", "invalid_amount"),
                               ("rejected", "account_not_found"), ("posted", None)])
        self.assertEqual(resp["results"][5]["from_balance"], "0")
        self.assertEqual(self.get_account(a)["balance"], "0")
        self.assertEqual(self.get_account(b)["balance"], "100")
        for i in (1, 2, 3, 4):
            self.assert_no_transfer(ids[i])
        status, g = self.c.get("/v1/transfers/" + ids[5])
        self.assertEqual(status, 200, g)

    def test_atomic_failure_by_invalid_amount(self):
        w, a = self.world(), self.acct("a")
        items = [self.item(self.next_id(), w, a, 5), self.item(self.next_id(), w, a, "-5"),
                 self.item(self.next_id(), w, a, 6)]
        res = self.batch(items, True)["results"]
        self.assertEqual([(r["status"], r["error"]) for r in res],
                         [("rejected", "batch_failed"), ("rejected", "invalid_amount"),
                          ("rejected", "batch_failed")])
        self.assertEqual(self.get_account(a)["seq"], 0)

    def test_rejected_item_id_judged_afresh_in_same_batch(self):
        w, a, b = self.world(), self.acct("a"), self.acct("b")
        id = self.uid("t")
        res = self.batch([self.item(id, a, b, 1000), self.item(id, w, a, 5)], False)["results"]
        self.assertEqual((res[0]["status"], res[0]["error"]), ("rejected", "insufficient_funds"))
        self.assertEqual(res[1]["status"], "posted", res[1])
        self.assertIs(res[1]["replayed"], False)
        status, g = self.c.get("/v1/transfers/" + id)
        self.assertEqual((g["from"], g["to"], g["amount"]), (w, a, "5"))

    def test_later_items_see_earlier_ones(self):
        for atomic in (True, False):
            w, a, b = (self.world("w%s" % atomic), self.acct("a%s" % atomic),
                       self.acct("b%s" % atomic))
            items = [self.item(self.next_id(), w, a, 100), self.item(self.next_id(), a, b, 100),
                     self.item(self.next_id(), b, a, 60, expect={"from_seq": 1, "to_seq": 2})]
            res = self.batch(items, atomic)["results"]
            self.assertEqual([r["status"] for r in res], ["posted"] * 3, (atomic, res))
            self.assertEqual(res[2]["from_balance"], "40")
            self.assertEqual(res[2]["to_balance"], "60")
            self.assertEqual(self.get_account(a)["seq"], 3)

    def test_repeated_id_in_batch(self):
        w, a = self.world(), self.acct("a")
        rid, cid = self.uid("replayed"), self.uid("conflict")
        items = [self.item(rid, w, a, 5), self.item(rid, w, a, "5", metadata={"m": 1}),
                 self.item(cid, w, a, 7), self.item(cid, w, a, 8)]
        res = self.batch(items, False)["results"]
        self.assertEqual(res[0]["status"], "posted")
        self.assertIs(res[0]["replayed"], False)
        self.assertEqual(res[1]["status"], "posted")
        self.assertIs(res[1]["replayed"], True)
        for f in ("from_seq", "to_seq", "from_balance", "to_balance", "amount"):
            self.assertEqual(res[1][f], res[0][f], f)
        self.assertEqual(res[2]["status"], "posted")
        self.assertEqual((res[3]["status"], res[3]["error"]), ("rejected", "id_conflict"))
        self.assertEqual(self.get_account(a)["balance"], "12")
        self.assertEqual(self.get_account(a)["seq"], 2)
        # Atomic: the conflict fails the whole batch.
        w2, a2 = self.world("w2"), self.acct("a2")
        x = self.uid("x")
        res = self.batch([self.item(x, w2, a2, 1), self.item(x, w2, a2, 2)], True)["results"]
        self.assertEqual([(r["status"], r["error"]) for r in res],
                         [("rejected", "batch_failed"), ("rejected", "id_conflict")])
        self.assertEqual(self.get_account(a2)["seq"], 0)
        # Atomic, identical repeat: one transfer, the second a replay.
        res = self.batch([self.item(x, w2, a2, 1), self.item(x, w2, a2, 1)], True)["results"]
        self.assertEqual([r["status"] for r in res], ["posted", "posted"])
        self.assertEqual([r["replayed"] for r in res], [False, True])
        self.assertEqual(self.get_account(a2)["balance"], "1")

    def test_batch_replays_earlier_transfer(self):
        w, a = self.world(), self.acct("a")
        first = self.ok(w, a, 9)
        res = self.batch([self.item(first["id"], w, a, 9), self.item(self.next_id(), w, a, 1)],
                         True)["results"]
        self.assertEqual(res[0], dict(first, replayed=True))
        self.assertEqual(res[1]["to_balance"], "10")

    def test_batch_body_errors(self):
        w, a = self.world(), self.acct("a")
        good = self.item(self.uid("good"), w, a, 5)
        cases = [
            ("body is an array", [good]),
            ("transfers not an array", {"transfers": good, "atomic": True}),
            ("transfers missing", {"atomic": True}),
            ("unknown top-level field", {"transfers": [good], "atomic": True, "x": 1}),
            ("atomic not a bool", {"transfers": [good], "atomic": "yes"}),
            ("item with unknown field", {"transfers": [good, dict(good, id=self.uid("g2"),
                                                                  memo="m")], "atomic": False}),
            ("item not an object", {"transfers": [good, 5], "atomic": False}),
            ("item missing amount", {"transfers": [good, {"id": self.uid("g3"), "from": w,
                                                           "to": a}], "atomic": False}),
            ("item with bad id", {"transfers": [good, dict(good, id="bad id")], "atomic": False}),
        ]
        for what, body in cases:
            status, resp = self.c.post("/v1/transfers/batch", body)
            self.assert_error(status, resp, 400, "invalid_request", what)
        for what, raw in (("malformed", '{"transfers": ['), ("empty", "")):
            status, resp = self.c.post("/v1/transfers/batch", raw=raw)
            self.assert_error(status, resp, 400, "invalid_request", what)
        self.assert_no_transfer(good["id"])
        self.assertEqual(self.get_account(a)["seq"], 0)
        self.assertEqual(self.get_account(w)["seq"], 0)

    def test_empty_batch(self):
        # "Up to 8,190 transfers" includes none: nothing applied, no results.
        for atomic in (True, False):
            status, resp = self.c.post("/v1/transfers/batch", {"transfers": [], "atomic": atomic})
            self.assertEqual((status, resp), (200, {"results": []}), atomic)
        status, resp = self.c.post("/v1/transfers/batch", {"transfers": []})
        self.assertEqual((status, resp), (200, {"results": []}))

    def test_batch_size_limit(self):
        w, a = self.world(), self.acct("a")
        items = [self.item(self.uid("n%d" % i), w, a, 1) for i in range(8191)]
        status, resp = self.c.post("/v1/transfers/batch", {"transfers": items, "atomic": False})
        self.assert_error(status, resp, 400, "batch_too_large", "8191 transfers")
        self.assertEqual(self.get_account(a)["seq"], 0)
        self.assert_no_transfer(items[0]["id"])
        # 8,190 is allowed.
        resp = self.batch(items[:8190], True)
        self.assertTrue(all(r["status"] == "posted" for r in resp["results"]))
        self.assertEqual(resp["results"][-1]["to_seq"], 8190)
        acc = self.get_account(a)
        self.assertEqual((acc["balance"], acc["seq"]), ("8190", 8190))


if __name__ == "__main__":
    unittest.main()
