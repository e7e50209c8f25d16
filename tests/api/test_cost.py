"""Mean acquisition cost: cost_currencies, unit_cost and avg_cost
(SPEC sections 2, 3 and 5).

Every expected mean is either a literal worked out by hand in the comments,
or computed here, independently of the server, with fractions.Fraction and
rounded half-even to 18 fraction digits (cross-checked with decimal).
"""
import datetime
import decimal
import json
import re
import time
import unittest
import urllib.parse
from fractions import Fraction

import harness

I128_MAX = 2 ** 127 - 1
SCALE = 10 ** 18
ZERO = "0.000000000000000000"
MEAN_RE = re.compile(r"^\d{1,20}\.\d{18}$")


def q(text):
    return urllib.parse.quote(text, safe="")


def round18(x):
    """x (a Fraction >= 0) rounded half-even to 18 fraction digits, as a Fraction."""
    scaled = x * SCALE
    n = scaled.numerator // scaled.denominator
    rest = scaled - n
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and n % 2 == 1):
        n += 1
    return Fraction(n, SCALE)


def fmt18(x):
    """A Fraction with at most 18 fraction digits in the response form."""
    n = x * SCALE
    assert n.denominator == 1, x
    n = n.numerator
    return "%d.%018d" % (n // SCALE, n % SCALE)


def dec_round18(num, den):
    """The same rounding done by the decimal module (a cross-check of round18)."""
    with decimal.localcontext() as ctx:
        ctx.prec = 200
        ctx.rounding = decimal.ROUND_HALF_EVEN
        return format((decimal.Decimal(num) / decimal.Decimal(den)).quantize(
            decimal.Decimal("1E-18"), rounding=decimal.ROUND_HALF_EVEN), "f")


class Model:
    """The mean rule of SPEC section 5, on exact fractions, one cost currency."""

    def __init__(self):
        self.balance = 0
        self.mean = Fraction(0)

    def credit(self, qty, unit):
        unit = Fraction(unit)
        if self.balance > 0:
            exact = (self.balance * self.mean + qty * unit) / (self.balance + qty)
            self.mean = round18(exact)
        else:
            self.mean = unit
        self.balance += qty
        if self.balance == 0:
            self.mean = Fraction(0)
        return fmt18(self.mean)

    def debit(self, qty):
        self.balance -= qty
        if self.balance == 0:
            self.mean = Fraction(0)
        return fmt18(self.mean)


class CostTest(harness.LedgerdTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.committed = 0  # transfers this class got accepted (checked by verify)

    # helpers

    def token(self, suffix, costs=("USD", "BRL"), min_balance="0", currency="TOKA"):
        id = self.uid(suffix)
        status, acc = self.c.post("/v1/accounts", {"id": id, "currency": currency,
                                                   "min_balance": min_balance,
                                                   "cost_currencies": list(costs)})
        self.assertEqual(status, 201, acc)
        self.assertEqual(acc["cost_currencies"], list(costs))
        self.assertEqual(acc["avg_cost"], {c: ZERO for c in costs})
        return id

    def plain(self, suffix, min_balance=None, currency="TOKA"):
        """An account tracking no cost (min_balance None: an issuer)."""
        id = self.uid(suffix)
        status, acc = self.c.post("/v1/accounts", {"id": id, "currency": currency,
                                                   "min_balance": min_balance})
        self.assertEqual(status, 201, acc)
        return id

    def ok(self, id, frm, to, amount, **kw):
        status, resp = self.c.transfer(self.uid(id), frm, to, amount, **kw)
        self.assertEqual(status, 201, (id, resp))
        self.assertFalse(resp["replayed"])
        type(self).committed += 1
        return resp

    def settle(self, id, action, body=None, expect=200):
        status, resp = self.c.post("/v1/transfers/%s/%s" % (q(self.uid(id)), action), body)
        self.assertEqual(status, expect, (id, action, resp))
        return resp

    def account(self, id):
        status, acc = self.c.get("/v1/accounts/" + q(id))
        self.assertEqual(status, 200, acc)
        return acc

    def avg(self, id):
        return self.account(id)["avg_cost"]

    def entries(self, id):
        return self.c.entries(id)

    def balance_at(self, id, at=None):
        path = "/v1/accounts/%s/balance" % q(id)
        if at is not None:
            path += "?at=" + q(at)
        status, resp = self.c.get(path)
        self.assertEqual(status, 200, (at, resp))
        return resp

    def snapshot(self, *ids):
        out = {}
        for id in ids:
            acc = self.account(id)
            out[id] = (acc, self.entries(id))
        return out

    def refused(self, http_status, code, id, frm, to, amount, unchanged=(), what="", **kw):
        before = self.snapshot(*unchanged)
        tid = self.uid(id)
        status, resp = self.c.transfer(tid, frm, to, amount, **kw)
        self.assert_error(status, resp, http_status, code, what or id)
        self.assertEqual(self.snapshot(*unchanged), before, "%s: a refused transfer changed "
                         "an account" % (what or id))
        status, got = self.c.get("/v1/transfers/" + q(tid))
        self.assertEqual(status, 404, "%s: a refused transfer was stored: %r" % (what or id, got))
        return resp

    def assert_entry_means(self, id, expected):
        """expected: one avg_cost dict per entry, in seq order."""
        ents = self.entries(id)
        self.assertEqual([e["seq"] for e in ents], list(range(1, len(expected) + 1)))
        for e, want in zip(ents, expected):
            self.assertEqual(e.get("avg_cost"), want, "entry %d of %s: %r" % (e["seq"], id, e))
            for v in e["avg_cost"].values():
                self.assertRegex(v, MEAN_RE)
        return ents

    # 1. the worked example

    def test_worked_example_balance_and_mean_on_each_date(self):
        tok = self.token("tok")
        iss = self.plain("issuer")

        def uc(usd, brl):
            return {"USD": usd, "BRL": brl}

        # 2023-01-02: buy 10 at 100 USD / 500 BRL. Prior balance 0, so the mean is
        # the unit cost: 100 USD, 500 BRL. Balance 10.
        r1 = self.ok("buy1", iss, tok, 10, unit_cost=uc("100", "500"),
                     effective_at="2023-01-02T10:00:00Z")
        # 2023-01-04: buy 10 at 200 / 1000.
        #   USD: (10*100 + 10*200) / (10+10) = 3000/20 = 150
        #   BRL: (10*500 + 10*1000) / 20 = 15000/20 = 750.    Balance 20.
        # (integers are accepted as well as decimal strings)
        r2 = self.ok("buy2", iss, tok, 10, unit_cost=uc(200, "1000.00"),
                     effective_at="2023-01-04T10:00:00Z")
        # 2023-01-05: sell 5. A debit leaves the mean unchanged: 150 / 750. Balance 15.
        r3 = self.ok("sell", tok, iss, 5, effective_at="2023-01-05T10:00:00Z")
        # 2023-01-06: buy 5 at 300 / 1500.
        #   USD: (15*150 + 5*300) / (15+5) = (2250 + 1500)/20 = 3750/20 = 187.5
        #   BRL: (15*750 + 5*1500) / 20 = (11250 + 7500)/20 = 18750/20 = 937.5
        #   Balance 20.
        r4 = self.ok("buy3", iss, tok, 5, unit_cost=uc("300", "1500"),
                     effective_at="2023-01-06T10:00:00Z")

        none = {"USD": ZERO, "BRL": ZERO}
        m1 = {"USD": "100.000000000000000000", "BRL": "500.000000000000000000"}
        m2 = {"USD": "150.000000000000000000", "BRL": "750.000000000000000000"}
        m4 = {"USD": "187.500000000000000000", "BRL": "937.500000000000000000"}

        self.assertEqual([r["to_balance" if r is not r3 else "from_balance"]
                          for r in (r1, r2, r3, r4)], ["10", "20", "15", "20"])
        self.assertEqual(r1["unit_cost"], m1)
        self.assertEqual(r2["unit_cost"], {"USD": "200.000000000000000000",
                                           "BRL": "1000.000000000000000000"})
        self.assertEqual(r1["effective_at"], "2023-01-02T10:00:00.000000Z")

        # The account now.
        acc = self.account(tok)
        self.assertEqual((acc["balance"], acc["seq"], acc["avg_cost"]), ("20", 4, m4))

        # Each entry carries the mean after it.
        ents = self.assert_entry_means(tok, [m1, m2, m2, m4])
        self.assertEqual([e["balance"] for e in ents], ["10", "20", "15", "20"])
        self.assertEqual([e["amount"] for e in ents], ["10", "10", "-5", "5"])
        self.assertEqual([e["effective_at"][:10] for e in ents],
                         ["2023-01-02", "2023-01-04", "2023-01-05", "2023-01-06"])
        # The issuer tracks no cost: its entries carry no mean.
        for e in self.entries(iss):
            self.assertIn(e.get("avg_cost"), (None, {}), e)

        # balance?at= on each date, between them, at the exact instants and mid-day.
        cases = [
            ("2023-01-01T00:00:00Z", "0", 0, none),
            ("2023-01-01T12:00:00Z", "0", 0, none),
            ("2023-01-02T00:00:00Z", "0", 0, none),
            ("2023-01-02T09:59:59.999999Z", "0", 0, none),
            ("2023-01-02T10:00:00Z", "10", 1, m1),          # the exact instant
            ("2023-01-02T12:00:00Z", "10", 1, m1),
            ("2023-01-03T00:00:00Z", "10", 1, m1),
            ("2023-01-03T12:00:00Z", "10", 1, m1),
            ("2023-01-04T00:00:00Z", "10", 1, m1),
            ("2023-01-04T09:59:59.999999Z", "10", 1, m1),
            ("2023-01-04T10:00:00Z", "20", 2, m2),
            ("2023-01-04T07:00:00-03:00", "20", 2, m2),     # the same instant, offset
            ("2023-01-04T12:00:00Z", "20", 2, m2),
            ("2023-01-05T00:00:00Z", "20", 2, m2),
            ("2023-01-05T10:00:00Z", "15", 3, m2),
            ("2023-01-05T12:00:00Z", "15", 3, m2),
            ("2023-01-06T00:00:00Z", "15", 3, m2),
            ("2023-01-06T09:59:59Z", "15", 3, m2),
            ("2023-01-06T10:00:00.000000Z", "20", 4, m4),
            ("2023-01-06T12:00:00Z", "20", 4, m4),
            ("2023-01-07T00:00:00Z", "20", 4, m4),
            ("2023-01-07T12:00:00Z", "20", 4, m4),
            (None, "20", 4, m4),
        ]
        for at, bal, seq, mean in cases:
            resp = self.balance_at(tok, at)
            self.assertEqual((resp["balance"], resp["seq"], resp.get("avg_cost")),
                             (bal, seq, mean), at)
        # The issuer's balance?at= works too and has no mean.
        resp = self.balance_at(iss, "2023-01-05T12:00:00Z")
        self.assertEqual((resp["balance"], resp["seq"]), ("-15", 3))
        self.assertIn(resp.get("avg_cost"), (None, {}))

    # 2. rounding

    def test_repeating_mean_rounds_and_next_step_uses_stored_mean(self):
        tok = self.token("tok", costs=("USD",))
        iss = self.plain("issuer")
        model = Model()
        steps = [
            # buy 3 at 1: balance 0, so the mean is 1.
            ("b1", 3, "1", "1.000000000000000000"),
            # buy 3 at 2: (3*1 + 3*2)/6 = 9/6 = 1.5
            ("b2", 3, "2", "1.500000000000000000"),
            # buy 1 at 0: (6*1.5 + 1*0)/7 = 9/7 = 1.285714285714285714|2857...
            # The 19th digit is 2: rounded down to ...714.
            ("b3", 1, "0", "1.285714285714285714"),
            # buy 2 at 3, from the stored mean m = 1.285714285714285714:
            #   (7*m + 2*3)/9 = (8.999999999999999998 + 6)/9 = 14.999999999999999998/9
            #   = 1.666666666666666666|444...  -> 1.666666666666666666
            # whereas the unrounded history would give 15/9 = 1.666...667.
            ("b4", 2, "3", "1.666666666666666666"),
        ]
        means = []
        for id, qty, unit, want in steps:
            self.assertEqual(model.credit(qty, Fraction(unit)), want, "model " + id)
            self.ok(id, iss, tok, qty, unit_cost={"USD": unit})
            means.append({"USD": want})
            self.assertEqual(self.avg(tok), {"USD": want}, id)
        # The last step really distinguishes "from the stored mean" from "exact".
        self.assertNotEqual(fmt18(round18(Fraction(15, 9))), steps[-1][3])
        self.assertEqual(fmt18(round18(Fraction(15, 9))), "1.666666666666666667")
        # (the test's own rounding agrees with decimal's half-even)
        for num, den, want in ((9, 7, "1.285714285714285714"), (15, 9, "1.666666666666666667"),
                               (2, 3, "0.666666666666666667"), (1, 2 * SCALE, ZERO),
                               (3, 2 * SCALE, "0.000000000000000002")):
            self.assertEqual(dec_round18(num, den), want)
            self.assertEqual(fmt18(round18(Fraction(num, den))), want)
        # A debit leaves the rounded mean as it is; one more credit continues from it.
        self.ok("s1", tok, iss, 4)
        self.assertEqual(model.debit(4), "1.666666666666666666")
        means.append({"USD": "1.666666666666666666"})
        # buy 1 at 0 from b=5, m=1.666666666666666666: 8.33333333333333333/6
        #   = 1.388888888888888888|333... -> 1.388888888888888888
        self.assertEqual(model.credit(1, 0), "1.388888888888888888")
        self.ok("b5", iss, tok, 1, unit_cost={"USD": 0})
        means.append({"USD": "1.388888888888888888"})
        self.assert_entry_means(tok, means)
        acc = self.account(tok)
        self.assertEqual((acc["balance"], acc["avg_cost"]), ("6", {"USD": "1.388888888888888888"}))

    def test_rounding_up_when_above_half(self):
        tok = self.token("tok", costs=("USD",))
        iss = self.plain("issuer")
        # buy 1 at 1, then 2 at 0.5: (1 + 1)/3 = 0.666...666|666 -> rounds up to ...667
        self.ok("b1", iss, tok, 1, unit_cost={"USD": "1"})
        self.ok("b2", iss, tok, 2, unit_cost={"USD": "0.5"})
        self.assertEqual(fmt18(round18(Fraction(2, 3))), "0.666666666666666667")
        self.assertEqual(self.avg(tok), {"USD": "0.666666666666666667"})
        # Next, 3 at 0 from the stored mean: 3*0.666666666666666667/6 = 0.3333333333333333335
        # exactly: a tie at the 19th digit with an odd 18th digit (3) -> up to ...334.
        # (From the exact 2/3 it would have been 1/3 -> ...333.)
        self.ok("b3", iss, tok, 3, unit_cost={"USD": "0"})
        want = fmt18(round18(Fraction(3 * 666666666666666667, 6 * SCALE)))
        self.assertEqual(want, "0.333333333333333334")
        self.assertEqual(self.avg(tok), {"USD": "0.333333333333333334"})

    def test_half_even_ties_at_the_19th_digit(self):
        iss = self.plain("issuer")
        cases = [
            # (first qty, first unit, second qty, second unit, exact mean, expected)
            # (1*1.000000000000000001 + 1*1)/2 = 1.0000000000000000005: a tie, 18th digit
            # 0 is even -> stays 1.000000000000000000 (half-up would give ...001).
            ("even1", 1, "1.000000000000000001", 1, "1", "1.0000000000000000005",
             "1.000000000000000000"),
            # (1.000000000000000003 + 1)/2 = 1.0000000000000000015: 18th digit 1 is odd
            # -> up to 1.000000000000000002 (truncation would give ...001).
            ("odd1", 1, "1.000000000000000003", 1, "1", "1.0000000000000000015",
             "1.000000000000000002"),
            # (9*1.000000000000000005 + 1*0)/10 = 9.000000000000000045/10
            # = 0.9000000000000000045: 18th digit 4 even -> 0.900000000000000004
            ("even9", 9, "1.000000000000000005", 1, "0", "0.9000000000000000045",
             "0.900000000000000004"),
            # (9*1.000000000000000015 + 0)/10 = 0.9000000000000000135: 18th digit 3 odd
            # -> 0.900000000000000014
            ("odd9", 9, "1.000000000000000015", 1, "0", "0.9000000000000000135",
             "0.900000000000000014"),
            # The same with big integer parts: (12345678901234567890.000000000000000001
            # + 12345678901234567890)/2 = 12345678901234567890.0000000000000000005 -> even
            ("evenbig", 1, "12345678901234567890.000000000000000001", 1,
             "12345678901234567890", "12345678901234567890.0000000000000000005",
             "12345678901234567890.000000000000000000"),
            # (0.000000000000000007 + 0)/2 = 0.0000000000000000035: 18th digit 3 odd -> ...004
            ("oddtiny", 1, "0.000000000000000007", 1, "0", "0.0000000000000000035",
             "0.000000000000000004"),
        ]
        for name, q1, u1, q2, u2, exact, want in cases:
            # The independent computation agrees with the hand figures.
            ex = (q1 * Fraction(u1) + q2 * Fraction(u2)) / (q1 + q2)
            self.assertEqual(ex, Fraction(decimal.Decimal(exact)), name)
            self.assertEqual(len(exact.split(".")[1]), 19, name)
            self.assertTrue(exact.endswith("5"), name)
            self.assertEqual(fmt18(round18(ex)), want, name)
            self.assertEqual(dec_round18(ex.numerator, ex.denominator), want, name)
            tok = self.token(name, costs=("USD",))
            self.ok(name + ".1", iss, tok, q1, unit_cost={"USD": u1})
            self.assertEqual(self.avg(tok), {"USD": fmt18(Fraction(u1))}, name)
            r = self.ok(name + ".2", iss, tok, q2, unit_cost={"USD": u2})
            self.assertEqual(r["to_balance"], str(q1 + q2))
            self.assertEqual(self.avg(tok), {"USD": want}, name)
            self.assertEqual(self.entries(tok)[-1]["avg_cost"], {"USD": want}, name)
            self.assertEqual(self.balance_at(tok)["avg_cost"], {"USD": want}, name)

    def test_extreme_magnitudes(self):
        # Quantities near 2^127 times unit costs of 20 integer digits: the exact
        # products need about 255 bits before the division.
        tok = self.token("tok", costs=("USD",))
        iss = self.plain("issuer")
        q1, u1 = 7 * 10 ** 37 + 3, "99999999999999999999.999999999999999999"
        q2, u2 = 10 ** 38 - 11, "12345678901234567890.123456789012345678"
        q3, u3 = I128_MAX - q1 - q2, "0.5"
        self.assertEqual(q3, 141183460469231731687303715884105735)
        model = Model()
        self.assertEqual(model.credit(q1, Fraction(u1)), u1)
        # (q1*u1 + q2*u2) / (q1 + q2), rounded half-even (computed by Model, and here
        # as a literal so that a change of the model is seen):
        m2 = model.credit(q2, Fraction(u2))
        self.assertEqual(m2, "48438634647785039935.366739287654320990")
        ex = (q1 * Fraction(u1) + q2 * Fraction(u2)) / (q1 + q2)
        self.assertEqual(dec_round18(ex.numerator, ex.denominator), m2)
        # then q3 at 0.5 from the stored m2, to a balance of exactly 2^127-1:
        m3 = model.credit(q3, Fraction(u3))
        self.assertEqual(m3, "48398440181513632837.611156973171494398")
        self.ok("b1", iss, tok, str(q1), unit_cost={"USD": u1})
        self.assertEqual(self.avg(tok), {"USD": u1})
        self.ok("b2", iss, tok, str(q2), unit_cost={"USD": u2})
        self.assertEqual(self.avg(tok), {"USD": m2})
        r = self.ok("b3", iss, tok, str(q3), unit_cost={"USD": u3})
        self.assertEqual(r["to_balance"], str(I128_MAX))
        self.assertEqual(self.avg(tok), {"USD": m3})
        self.assert_entry_means(tok, [{"USD": u1}, {"USD": m2}, {"USD": m3}])

    # 3. zero balance and positions below zero

    def test_debit_to_zero_resets_mean_then_credit_takes_unit_cost(self):
        tok = self.token("tok")
        iss = self.plain("issuer")
        self.ok("b1", iss, tok, 10, unit_cost={"USD": "5", "BRL": "25"})
        self.ok("b2", iss, tok, 10, unit_cost={"USD": "6", "BRL": "26"})
        # (10*5 + 10*6)/20 = 5.5 ; (10*25 + 10*26)/20 = 25.5
        mixed = {"USD": "5.500000000000000000", "BRL": "25.500000000000000000"}
        self.assertEqual(self.avg(tok), mixed)
        self.ok("s1", tok, iss, 15)
        self.assertEqual(self.avg(tok), mixed)            # partial sale: unchanged
        r = self.ok("s2", tok, iss, 5)
        self.assertEqual(r["from_balance"], "0")
        zero = {"USD": ZERO, "BRL": ZERO}
        self.assertEqual(self.avg(tok), zero)             # balance 0: mean 0
        # A credit at balance 0 takes its unit cost (nothing of the old 5.5 remains).
        self.ok("b3", iss, tok, 4, unit_cost={"USD": "7", "BRL": "0.25"})
        fresh = {"USD": "7.000000000000000000", "BRL": "0.250000000000000000"}
        self.assertEqual(self.avg(tok), fresh)
        ents = self.assert_entry_means(tok, [
            {"USD": "5.000000000000000000", "BRL": "25.000000000000000000"},
            mixed, mixed, zero, fresh])
        # balance?at= just after the reset and now.
        self.assertEqual(self.balance_at(tok, ents[3]["effective_at"])["avg_cost"], zero)
        self.assertEqual(self.balance_at(tok, ents[3]["effective_at"])["balance"], "0")
        self.assertEqual(self.balance_at(tok)["avg_cost"], fresh)

    def test_position_below_zero_with_overdraft(self):
        # An account allowed to go to -100. From 0 a debit leaves the mean at 0; a
        # credit while the balance is not > 0 takes its unit cost; reaching exactly 0
        # gives mean 0; a credit from 0 takes its unit cost; then means mix normally.
        tok = self.token("tok", costs=("USD",), min_balance="-100")
        iss = self.plain("issuer")
        steps = [
            ("s1", "debit", 30, None, "-30", ZERO),
            # b = -30 is not > 0: the mean is u = 4
            ("b1", "credit", 10, "4", "-20", "4.000000000000000000"),
            # balance reaches exactly 0: mean 0
            ("b2", "credit", 20, "5", "0", ZERO),
            # from 0: u = 6
            ("b3", "credit", 10, "6", "10", "6.000000000000000000"),
            # (10*6 + 10*2)/20 = 4
            ("b4", "credit", 10, "2", "20", "4.000000000000000000"),
            ("s2", "debit", 20, None, "0", ZERO),
        ]
        means = []
        for id, kind, qty, unit, bal, want in steps:
            if kind == "debit":
                r = self.ok(id, tok, iss, qty)
                self.assertEqual(r["from_balance"], bal, id)
            else:
                r = self.ok(id, iss, tok, qty, unit_cost={"USD": unit})
                self.assertEqual(r["to_balance"], bal, id)
            self.assertEqual(self.avg(tok), {"USD": want}, id)
            means.append({"USD": want})
        self.assert_entry_means(tok, means)

    def test_transfer_between_tracking_accounts(self):
        a = self.token("a")
        b = self.token("b")
        iss = self.plain("issuer")
        self.ok("fund", iss, a, 10, unit_cost={"USD": "3", "BRL": "15"})
        # a -> b: b is credited and needs a unit_cost; a's mean does not change.
        self.refused(422, "missing_unit_cost", "x1", a, b, 4, unchanged=(a, b))
        self.ok("move", a, b, 4, unit_cost={"USD": "8", "BRL": "40"})
        self.assertEqual(self.avg(a), {"USD": "3.000000000000000000",
                                       "BRL": "15.000000000000000000"})
        self.assertEqual(self.avg(b), {"USD": "8.000000000000000000",
                                       "BRL": "40.000000000000000000"})
        # An account tracking other currencies: a unit_cost must name its own ones.
        e = self.token("e", costs=("EUR",))
        self.refused(400, "invalid_request", "x2", a, e, 1, unchanged=(a, e),
                     unit_cost={"USD": "1", "BRL": "1"})
        self.ok("move2", a, e, 2, unit_cost={"EUR": "0.1"})
        self.assertEqual(self.avg(e), {"EUR": "0.100000000000000000"})
        self.assertEqual(self.account(a)["balance"], "4")

    # 4. errors

    def test_missing_unit_cost(self):
        tok = self.token("tok")
        iss = self.plain("issuer")
        self.ok("b1", iss, tok, 10, unit_cost={"USD": "2", "BRL": "10"})
        both = (tok, iss)
        self.refused(422, "missing_unit_cost", "none", iss, tok, 5, unchanged=both)
        self.refused(422, "missing_unit_cost", "usd_only", iss, tok, 5, unchanged=both,
                     unit_cost={"USD": "1"})
        self.refused(422, "missing_unit_cost", "brl_only", iss, tok, 5, unchanged=both,
                     unit_cost={"BRL": "1"})
        # An empty map lacks every cost currency, as a partial one lacks some.
        self.refused(422, "missing_unit_cost", "empty", iss, tok, 5, unchanged=both,
                     unit_cost={})
        self.refused(422, "missing_unit_cost", "pending", iss, tok, 5, unchanged=both,
                     pending=True)
        self.refused(422, "missing_unit_cost", "pending_half", iss, tok, 5, unchanged=both,
                     pending=True, unit_cost={"USD": "1"})
        # A rejected id is judged afresh: the same id with a full unit_cost applies.
        r = self.ok("none", iss, tok, 5, unit_cost={"USD": "5", "BRL": "25"})
        self.assertEqual(r["to_balance"], "15")
        # (10*2 + 5*5)/15 = 45/15 = 3 ; (10*10 + 5*25)/15 = 225/15 = 15
        self.assertEqual(self.avg(tok), {"USD": "3.000000000000000000",
                                         "BRL": "15.000000000000000000"})
        # A debit of the tracked account needs no unit_cost (the issuer tracks nothing).
        self.ok("sell", tok, iss, 1)
        self.assertEqual(self.avg(tok), {"USD": "3.000000000000000000",
                                         "BRL": "15.000000000000000000"})

    def test_unit_cost_where_it_does_not_apply(self):
        tok = self.token("tok")
        iss = self.plain("issuer")
        holder = self.plain("holder", min_balance="0")
        self.ok("b1", iss, tok, 10, unit_cost={"USD": "2", "BRL": "10"})
        keep = (tok, iss, holder)
        cases = [
            # A currency the account does not track (with or without the tracked ones).
            ("eur_extra", iss, tok, {"unit_cost": {"USD": "1", "BRL": "1", "EUR": "1"}}),
            ("eur_only", iss, tok, {"unit_cost": {"EUR": "1"}}),
            # A transfer whose credited account tracks no cost: issuer -> plain
            # holder, and a sale from the tracked account to the issuer.
            ("to_plain", iss, holder, {"unit_cost": {"USD": "1"}}),
            ("to_plain_empty", iss, holder, {"unit_cost": {"USD": "1", "BRL": "1"}}),
            ("to_plain_no_costs", iss, holder, {"unit_cost": {}}),
            ("sale", tok, iss, {"unit_cost": {"USD": "1", "BRL": "1"}}),
            ("pending_to_plain", iss, holder, {"pending": True, "unit_cost": {"USD": "1"}}),
        ]
        for id, frm, to, kw in cases:
            resp = self.refused(400, "invalid_request", id, frm, to, 1, unchanged=keep, **kw)
            self.assertIn("does not track", resp["message"], id)
        # Not a currency code at all: refused as syntax, before the accounts.
        resp = self.refused(400, "invalid_request", "lower", iss, tok, 1, unchanged=keep,
                            unit_cost={"usd": "1", "BRL": "1"})
        self.assertIn("invalid currency code", resp["message"])

    def test_unit_cost_formats_refused(self):
        tok = self.token("tok", costs=("USD",))
        iss = self.plain("issuer")
        self.ok("b1", iss, tok, 10, unit_cost={"USD": "2"})
        bad = [
            ("trailing dot", "1."),
            ("leading dot", ".5"),
            ("negative", "-1"),
            ("negative int", -1),
            ("exponent", "1e3"),
            ("exponent upper", "1E3"),
            ("19 fraction digits", "1.0000000000000000001"),
            ("19 fraction digits zero", "0.0000000000000000000"),
            ("21 integer digits", "123456789012345678901"),
            ("21 digits with fraction", "100000000000000000000.5"),
            ("JSON float", 1.5),
            ("JSON float integral", 2.0),
            ("JSON exponent", 1e3),
            ("empty", ""),
            ("space", " 1"),
            ("trailing space", "1 "),
            ("plus", "+1"),
            ("comma", "1,5"),
            ("two dots", "1.2.3"),
            ("hex", "0x10"),
            ("letters", "abc"),
            ("NaN", "NaN"),
            ("Infinity", "Infinity"),
            ("null", None),
            ("bool", True),
            ("list", ["1"]),
            ("object", {"v": "1"}),
        ]
        for n, (what, value) in enumerate(bad):
            with self.subTest(unit_cost=value):
                self.refused(400, "invalid_request", "bad%d" % n, iss, tok, 1,
                             unchanged=(tok,), what="unit_cost %s %r" % (what, value),
                             unit_cost={"USD": value})
        # JSON integers beyond 64 bits are read as exactly as strings: a
        # 21-digit one is too wide like the same digits as a string.
        self.refused(400, "invalid_request", "wide", iss, tok, 1, unchanged=(tok,),
                     what="unit_cost 21-digit JSON integer", unit_cost={"USD": 10 ** 20})
        for what, value in (("a string", "1.5"), ("a list", [{"USD": "1"}]),
                            ("a number", 1)):
            self.refused(400, "invalid_request", "nonobj", iss, tok, 1, unchanged=(tok,),
                         what="unit_cost " + what, unit_cost=value)
        self.assertEqual(self.avg(tok), {"USD": "2.000000000000000000"})

    def test_unit_cost_formats_accepted(self):
        iss = self.plain("issuer")
        good = [
            ("int", 7, "7.000000000000000000"),
            ("int zero", 0, ZERO),
            ("string int", "7", "7.000000000000000000"),
            ("string zero", "0", ZERO),
            ("zero point zero", "0.0", ZERO),
            ("fraction", "7.5", "7.500000000000000000"),
            ("leading zero fraction", "0.5", "0.500000000000000000"),
            ("trailing zeros", "7.50", "7.500000000000000000"),
            ("smallest", "0.000000000000000001", "0.000000000000000001"),
            ("18 fraction digits", "1.123456789012345678", "1.123456789012345678"),
            ("20 integer digits", "12345678901234567890", "12345678901234567890.000000000000000000"),
            ("largest", "99999999999999999999.999999999999999999",
             "99999999999999999999.999999999999999999"),
            ("largest 64-bit int", 2 ** 63 - 1, "9223372036854775807.000000000000000000"),
            ("20-digit int", 10 ** 19, "10000000000000000000.000000000000000000"),
        ]
        for n, (what, value, want) in enumerate(good):
            with self.subTest(unit_cost=value):
                tok = self.token("t%d" % n, costs=("USD",))
                r = self.ok("b%d" % n, iss, tok, 3, unit_cost={"USD": value})
                self.assertEqual(r["unit_cost"], {"USD": want}, what)
                self.assertEqual(self.avg(tok), {"USD": want}, what)
                self.assertEqual(self.entries(tok)[0]["avg_cost"], {"USD": want}, what)

    def test_get_transfer_shows_unit_cost(self):
        # GET /v1/transfers/{id} is the transfer result (without replayed) plus its
        # metadata; the result of a credit to a tracking account carries unit_cost.
        tok = self.token("tok", costs=("USD",))
        iss = self.plain("issuer")
        for id, kw in (("posted", {}), ("pending", {"pending": True})):
            with self.subTest(id):
                r = self.ok(id, iss, tok, 3, unit_cost={"USD": "2.5"}, **kw)
                self.assertEqual(r["unit_cost"], {"USD": "2.500000000000000000"}, id)
                status, got = self.c.get("/v1/transfers/" + q(self.uid(id)))
                self.assertEqual(status, 200, got)
                self.assertEqual(got.get("unit_cost"), {"USD": "2.500000000000000000"},
                                 "GET of the %s credit: %r" % (id, got))
                for k in r:
                    if k != "replayed":
                        self.assertEqual(got.get(k), r[k], "GET %s: field %s" % (id, k))

    def test_replay_returns_original_result_with_unit_cost(self):
        # A replay answers the original result (with replayed: true), unit_cost
        # included, whatever unit_cost the retry carries; nothing changes.
        tok = self.token("tok", costs=("USD",))
        iss = self.plain("issuer")
        for id, kw in (("posted", {}), ("pending", {"pending": True})):
            with self.subTest(id):
                first = self.ok(id, iss, tok, 3, unit_cost={"USD": "2.5"}, **kw)
                before = self.snapshot(tok, iss)
                for retry_kw in ({"unit_cost": {"USD": "2.5"}}, {"unit_cost": {"USD": "99"}},
                                 {}):
                    status, again = self.c.transfer(self.uid(id), iss, tok, 3,
                                                    **dict(kw, **retry_kw))
                    self.assertEqual(status, 200, again)
                    self.assertTrue(again["replayed"])
                    self.assertEqual(self.snapshot(tok, iss), before)
                    for k in first:
                        if k != "replayed":
                            self.assertEqual(again.get(k), first[k],
                                             "replay of %s with %r: field %s"
                                             % (id, retry_kw, k))
        self.assertEqual(self.avg(tok), {"USD": "2.500000000000000000"})

    def test_order_of_checks(self):
        tok = self.token("tok")
        iss = self.plain("issuer")
        usd = self.plain("usd", currency="USD")
        poor = self.plain("poor", min_balance="0")
        full = {"USD": "1", "BRL": "1"}
        self.ok("b1", iss, tok, 10, unit_cost=full, effective_at="2023-01-05T00:00:00Z")
        keep = (tok, iss, poor)
        # syntax (400) first: a malformed unit_cost, backdated and missing BRL
        self.refused(400, "invalid_request", "syntax", iss, tok, 1, unchanged=keep,
                     unit_cost={"USD": "1e3"}, effective_at="2023-01-01T00:00:00Z")
        # existing id: a replay without unit_cost answers the original, changes nothing
        before = self.snapshot(*keep)
        status, resp = self.c.transfer(self.uid("b1"), iss, tok, 10)
        self.assertEqual(status, 200, resp)
        self.assertTrue(resp["replayed"])
        status, resp = self.c.transfer(self.uid("b1"), iss, tok, "10",
                                       unit_cost={"USD": "99", "BRL": "99"})
        self.assertEqual(status, 200, resp)
        self.assertTrue(resp["replayed"])
        self.assertEqual(self.snapshot(*keep), before)
        # ... or id_conflict without unit_cost
        status, resp = self.c.transfer(self.uid("b1"), iss, tok, 11)
        self.assert_error(status, resp, 409, "id_conflict", "id_conflict vs missing")
        self.assertEqual(self.snapshot(*keep), before)
        self.refused(422, "same_account", "same", tok, tok, 1, unchanged=keep)
        self.refused(404, "account_not_found", "nf", self.uid("nobody"), tok, 1, unchanged=keep)
        # a unit_cost the account does not take is a 400 once the account is known
        self.refused(404, "account_not_found", "nf_uc", iss, self.uid("nobody"), 1,
                     unchanged=keep, unit_cost={"USD": "1"})
        self.refused(400, "invalid_request", "uc_cur", usd, tok, 1, unchanged=keep,
                     unit_cost={"USD": "1", "BRL": "1", "EUR": "1"})
        self.refused(400, "invalid_request", "uc_seq", iss, poor, 1, unchanged=keep,
                     unit_cost={"USD": "1"}, expect={"to_seq": 7})
        self.refused(400, "invalid_request", "uc_past", iss, tok, 1, unchanged=keep,
                     unit_cost={"EUR": "1"}, effective_at="2023-01-04T23:59:59Z")
        self.refused(422, "currency_mismatch", "cur", usd, tok, 1, unchanged=keep)
        self.refused(409, "seq_mismatch", "seq", iss, tok, 1, unchanged=keep,
                     expect={"to_seq": 0})
        # backdated wins over missing_unit_cost: before the last entry, and in the future
        self.refused(422, "backdated", "past", iss, tok, 1, unchanged=keep,
                     effective_at="2023-01-04T23:59:59Z")
        self.refused(422, "backdated", "past_half", iss, tok, 1, unchanged=keep,
                     effective_at="2023-01-04T23:59:59Z", unit_cost={"USD": "1"})
        future = (datetime.datetime.now(datetime.timezone.utc)
                  + datetime.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.refused(422, "backdated", "future", iss, tok, 1, unchanged=keep,
                     effective_at=future)
        # ... and with a full unit_cost it is backdated as well
        self.refused(422, "backdated", "past_full", iss, tok, 1, unchanged=keep,
                     effective_at="2023-01-04T23:59:59Z", unit_cost=full)
        # missing_unit_cost wins over insufficient_funds
        self.refused(422, "missing_unit_cost", "poor", poor, tok, 1, unchanged=keep)
        self.refused(422, "insufficient_funds", "poor_full", poor, tok, 1, unchanged=keep,
                     unit_cost=full)
        # missing_unit_cost wins over amount_overflow
        self.ok("top", iss, tok, str(I128_MAX - 10), unit_cost=full)
        self.refused(422, "missing_unit_cost", "over", iss, tok, 11, unchanged=keep)
        self.refused(422, "missing_unit_cost", "over_half", iss, tok, 11, unchanged=keep,
                     unit_cost={"BRL": "1"})
        self.refused(422, "amount_overflow", "over_full", iss, tok, 11, unchanged=keep,
                     unit_cost=full)
        # balance 2^127-1; mean (10*1 + (2^127-11)*1)/(2^127-1) = 1 in both currencies
        self.assertEqual(self.account(tok)["balance"], str(I128_MAX))
        self.assertEqual(self.avg(tok), {"USD": "1.000000000000000000",
                                         "BRL": "1.000000000000000000"})

    def test_batches(self):
        tok = self.token("tok", costs=("USD",))
        iss = self.plain("issuer")
        full = {"USD": "4"}

        def item(id, amount, **kw):
            d = {"id": self.uid(id), "from": iss, "to": tok, "amount": amount}
            d.update(kw)
            return d

        before = self.snapshot(tok, iss)
        # atomic: the missing one carries its error, the good one batch_failed
        status, resp = self.c.post("/v1/transfers/batch", {"atomic": True, "transfers": [
            item("a1", 2, unit_cost=full), item("a2", 2)]})
        self.assertEqual(status, 200, resp)
        self.assertEqual([(r["status"], r.get("error")) for r in resp["results"]],
                         [("rejected", "batch_failed"), ("rejected", "missing_unit_cost")])
        self.assertEqual(self.snapshot(tok, iss), before)
        # a malformed unit_cost in any item refuses the whole batch
        status, resp = self.c.post("/v1/transfers/batch", {"atomic": False, "transfers": [
            item("m1", 2, unit_cost=full), item("m2", 2, unit_cost={"USD": "1e3"})]})
        self.assert_error(status, resp, 400, "invalid_request", "batch with a bad unit_cost")
        self.assertEqual(self.snapshot(tok, iss), before)
        # non-atomic, in order: 2 at 4 (mean 4), a missing one, 2 at 1 -> (8+2)/4 = 2.5
        status, resp = self.c.post("/v1/transfers/batch", {"atomic": False, "transfers": [
            item("n1", 2, unit_cost=full), item("n2", 2), item("n3", 2, unit_cost={"USD": 1})]})
        self.assertEqual(status, 200, resp)
        self.assertEqual([(r["status"], r.get("error")) for r in resp["results"]],
                         [("posted", None), ("rejected", "missing_unit_cost"), ("posted", None)])
        type(self).committed += 2
        self.assert_entry_means(tok, [{"USD": "4.000000000000000000"},
                                      {"USD": "2.500000000000000000"}])

    # 5. pending credits

    def test_pending_credit_post_and_void(self):
        tok = self.token("tok")
        iss = self.plain("issuer")
        m0 = {"USD": "100.000000000000000000", "BRL": "500.000000000000000000"}
        self.ok("b1", iss, tok, 10, unit_cost={"USD": "100", "BRL": "500"})
        # Reserve 10 at 200 / 1000 and 5 at 1 / 1: the mean does not move while pending.
        p1 = self.ok("p1", iss, tok, 10, pending=True, unit_cost={"USD": "200", "BRL": "1000"})
        self.assertEqual(p1["status"], "pending")
        self.assertEqual(p1["unit_cost"], {"USD": "200.000000000000000000",
                                           "BRL": "1000.000000000000000000"})
        self.ok("p2", iss, tok, 5, pending=True, unit_cost={"USD": "1", "BRL": "1"})
        acc = self.account(tok)
        self.assertEqual((acc["balance"], acc["pending_in"], acc["avg_cost"]), ("10", "15", m0))
        # A posted credit in between, while p1 and p2 are pending, mixes in normally:
        # (10*100 + 10*100)/20 = 100 ; (10*500 + 10*500)/20 = 500 - unchanged figures but
        # a balance of 20 for the next step. Then a sale of 10: balance 10, mean the same.
        self.ok("b2", iss, tok, 10, unit_cost={"USD": "100", "BRL": "500"})
        self.ok("s1", tok, iss, 10)
        self.assertEqual(self.avg(tok), m0)
        # Post 6 of p1's 10: the stored unit cost 200 / 1000 applies to 6 units.
        #   USD: (10*100 + 6*200)/16 = 2200/16 = 137.5
        #   BRL: (10*500 + 6*1000)/16 = 11000/16 = 687.5
        r = self.settle("p1", "post", {"amount": 6})
        self.assertEqual((r["status"], r["posted_amount"], r["to_balance"]),
                         ("posted", "6", "16"))
        m1 = {"USD": "137.500000000000000000", "BRL": "687.500000000000000000"}
        acc = self.account(tok)
        self.assertEqual((acc["balance"], acc["pending_in"], acc["avg_cost"]), ("16", "5", m1))
        # Void p2: reservation released, the mean unchanged.
        r = self.settle("p2", "void")
        self.assertEqual(r["status"], "voided")
        acc = self.account(tok)
        self.assertEqual((acc["balance"], acc["pending_in"], acc["avg_cost"]), ("16", "0", m1))
        # A third pending credit posted in full: 4 at 50 / 250.
        #   USD: (16*137.5 + 4*50)/20 = (2200 + 200)/20 = 120
        #   BRL: (16*687.5 + 4*250)/20 = (11000 + 1000)/20 = 600
        self.ok("p3", iss, tok, 4, pending=True, unit_cost={"USD": 50, "BRL": "250.0"})
        r = self.settle("p3", "post")
        self.assertEqual((r["posted_amount"], r["to_balance"]), ("4", "20"))
        m3 = {"USD": "120.000000000000000000", "BRL": "600.000000000000000000"}
        self.assertEqual(self.avg(tok), m3)
        # Posting again the same way is a replay and changes nothing.
        r = self.settle("p3", "post")
        self.assertTrue(r["replayed"])
        self.assertEqual(self.avg(tok), m3)
        ents = self.assert_entry_means(tok, [m0, m0, m0, m0, m0, m1, m1, m1, m3])
        self.assertEqual([e["kind"] for e in ents],
                         ["posted", "pending", "pending", "posted", "posted", "post_pending",
                          "void_pending", "pending", "post_pending"])
        self.assertEqual([e["balance"] for e in ents],
                         ["10", "10", "10", "20", "10", "16", "16", "16", "20"])
        status, got = self.c.get("/v1/transfers/" + q(self.uid("p1")))
        self.assertEqual(status, 200, got)
        self.assertEqual(got["unit_cost"], p1["unit_cost"])
        self.assertEqual(self.balance_at(tok)["avg_cost"], m3)

    def test_pending_credit_to_empty_account_takes_unit_cost(self):
        tok = self.token("tok", costs=("USD",))
        iss = self.plain("issuer")
        self.ok("p1", iss, tok, 9, pending=True, unit_cost={"USD": "0.3"})
        self.assertEqual(self.avg(tok), {"USD": ZERO})
        r = self.settle("p1", "post", {"amount": "2"})
        self.assertEqual(r["to_balance"], "2")
        self.assertEqual(self.avg(tok), {"USD": "0.300000000000000000"})
        # A pending debit of the tracked account moves nothing either.
        self.ok("p2", tok, iss, 1, pending=True)
        self.assertEqual(self.avg(tok), {"USD": "0.300000000000000000"})
        self.settle("p2", "post")
        self.assertEqual(self.avg(tok), {"USD": "0.300000000000000000"})
        self.ok("p3", tok, iss, 1, pending=True)
        self.settle("p3", "post")
        acc = self.account(tok)
        self.assertEqual((acc["balance"], acc["avg_cost"]), ("0", {"USD": ZERO}))

    def test_expired_pending_credit_leaves_mean(self):
        tok = self.token("tok", costs=("USD",))
        iss = self.plain("issuer")
        self.ok("b1", iss, tok, 4, unit_cost={"USD": "2"})
        self.ok("p1", iss, tok, 4, pending=True, timeout_s=1, unit_cost={"USD": "10"})
        deadline = time.time() + 8
        status = None
        while time.time() < deadline:
            st, got = self.c.get("/v1/transfers/" + q(self.uid("p1")))
            self.assertEqual(st, 200, got)
            status = got["status"]
            if status == "expired":
                break
            time.sleep(0.2)
        self.assertEqual(status, "expired")
        acc = self.account(tok)
        self.assertEqual((acc["balance"], acc["pending_in"], acc["avg_cost"]),
                         ("4", "0", {"USD": "2.000000000000000000"}))
        status, resp = self.c.post("/v1/transfers/%s/post" % q(self.uid("p1")))
        self.assert_error(status, resp, 409, "pending_expired")
        ents = self.assert_entry_means(tok, [{"USD": "2.000000000000000000"}] * 3)
        self.assertEqual([e["kind"] for e in ents], ["posted", "pending", "expire_pending"])

    # 6. verify re-derives every mean (runs last: "zz")

    def test_zz_verify_rederives_means(self):
        db = harness.cluster().conninfo
        rc, out = harness.verify(db)
        self.assertEqual(rc, 0, out)
        self.assertIn("verify: OK", out)
        m = re.search(r"checked (\d+) accounts, (\d+) transfers, (\d+) entries", out)
        self.assertIsNotNone(m, out)
        self.assertGreaterEqual(int(m.group(2)), type(self).committed, out)

        # verify must really re-derive the means: alter one stored mean in the middle
        # of an account's history (bypassing the insert-only triggers as superuser),
        # then put it back; then the same with the account's current mean.
        cl = harness.cluster()
        _, row, _ = cl.psql(
            "SELECT e.account_id, e.seq, a.ext_id, e.avg_cost::text FROM ledger.entries e"
            " JOIN ledger.accounts a ON a.id = e.account_id"
            " WHERE e.seq = 2 AND a.cost_currencies <> '{}' AND e.avg_cost IS NOT NULL"
            " ORDER BY a.ext_id LIKE 'worked_example%' DESC, e.account_id LIMIT 1")
        self.assertTrue(row, "no tracked entry to alter")
        account_id, seq, ext_id, orig = row.split("|", 3)
        key = sorted(json.loads(orig))[0]
        at = "WHERE account_id = %d AND seq = %d" % (int(account_id), int(seq))
        def bypass(sql):
            cl.psql("BEGIN; ALTER TABLE ledger.entries DISABLE TRIGGER entries_insert_only; "
                    + sql + "; ALTER TABLE ledger.entries ENABLE ALWAYS TRIGGER"
                    " entries_insert_only; COMMIT")
        bypass("UPDATE ledger.entries SET avg_cost = jsonb_set(avg_cost, '{%s}', "
               "'\"0.000000000000000001\"') %s" % (key, at))
        try:
            rc, out = harness.verify(db)
            self.assertNotEqual(rc, 0, "verify missed an altered entry mean:\n" + out)
            self.assertNotIn("verify: OK", out)
            self.assertIn(ext_id, out)
        finally:
            bypass("UPDATE ledger.entries SET avg_cost = '%s'::jsonb %s" % (orig, at))
        _, now, _ = cl.psql("SELECT avg_cost::text FROM ledger.accounts WHERE id = %d"
                            % int(account_id))
        cl.psql("UPDATE ledger.accounts SET avg_cost = jsonb_set(avg_cost, '{%s}', "
                "'\"0.000000000000000001\"') WHERE id = %d" % (key, int(account_id)))
        try:
            rc, out = harness.verify(db)
            self.assertNotEqual(rc, 0, "verify missed an altered account mean:\n" + out)
            self.assertIn(ext_id, out)
        finally:
            cl.psql("UPDATE ledger.accounts SET avg_cost = '%s'::jsonb WHERE id = %d"
                    % (now, int(account_id)))
        rc, out = harness.verify(db)
        self.assertEqual(rc, 0, out)
        self.assertIn("verify: OK", out)


if __name__ == "__main__":
    unittest.main()
