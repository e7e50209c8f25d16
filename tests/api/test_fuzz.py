"""Seeded random bad input against every endpoint: every answer is a JSON
4xx (or a 2xx when the mutation happens to be valid), never a 5xx, never a
hang, and the ledger stays consistent."""
import json
import os
import random
import time
import unittest

import harness

VALUES = [None, True, False, 0, -1, 1, 2 ** 63 - 1, -2 ** 63, 1.5, -0.0, 1e308, "", " ", "0",
          "-1", "1" * 40, "1" * 200, "\u00e9", "\u0000", "a\"b", "\\", "wallet:ann", "USD",
          "usd", "2023-01-02T00:00:00Z", "2023-13-45T99:99:99Z", [], [1, 2], {}, {"a": 1},
          "x" * 5000]
FIELDS = ["id", "from", "to", "amount", "currency", "pending", "timeout_s", "metadata",
          "effective_at", "expect", "unit_cost", "transfers", "atomic", "min_balance",
          "cost_currencies", "action", "bogus"]
PATHS = [("POST", "/v1/accounts"), ("POST", "/v1/transfers"), ("POST", "/v1/transfers/batch"),
         ("POST", "/v1/transfers/f-pend/post"), ("POST", "/v1/transfers/f-pend/void"),
         ("GET", "/v1/accounts/f-a"), ("GET", "/v1/accounts/f-a/balance"),
         ("GET", "/v1/accounts/f-a/entries"), ("GET", "/v1/transfers/f-t")]
QUERIES = ["", "?at=x", "?at=2023-01-01T00:00:00Z", "?limit=-1", "?limit=0", "?after_seq=x",
           "?limit=99999999999999999999", "?x=1", "?at=%00", "?limit=1&limit=2"]


def mutate(rnd):
    base = {"id": "f-%d" % rnd.randrange(50), "from": "f-a", "to": "f-b",
            "amount": rnd.choice([1, "5", 0])}
    for _ in range(rnd.randrange(4)):
        field = rnd.choice(FIELDS)
        if rnd.random() < 0.2:
            base.pop(field, None)
        else:
            base[field] = rnd.choice(VALUES)
    if rnd.random() < 0.2:
        base = {"transfers": [base] * rnd.randrange(3), "atomic": rnd.choice(VALUES)}
    text = json.dumps(base)
    r = rnd.random()
    if r < 0.1:
        text = text[:rnd.randrange(len(text) + 1)]  # truncated
    elif r < 0.15:
        text = "[" * rnd.randrange(1, 5000)  # deep nesting
    elif r < 0.2:
        return bytes(rnd.randrange(256) for _ in range(rnd.randrange(200)))  # not even UTF-8
    return text.encode("utf-8", "surrogatepass")


class Fuzz(unittest.TestCase):
    def test_random_bad_input(self):
        seed = int(os.environ.get("LEDGER_SEED", random.randrange(1 << 30)))
        print("fuzz seed=%d" % seed)
        rnd = random.Random(seed)
        pg = harness.cluster()
        pg.reset()
        d = harness.Ledgerd(db=pg.conninfo)
        try:
            c = d.client()
            c.account("f-a", min_balance=None)
            c.account("f-b")
            self.assertEqual(c.transfer("f-pend", "f-a", "f-b", 5, pending=True)[0], 201)
            deadline = time.time() + 8
            n = 0
            while time.time() < deadline:
                method, path = rnd.choice(PATHS)
                n += 1
                if method == "GET":
                    status, body = c.get(path + rnd.choice(QUERIES))
                else:
                    status, body = c.post(path, raw=mutate(rnd))
                self.assertLess(status, 500, (method, path, body))
                self.assertIsInstance(body, dict, (method, path, body))
                if status >= 400:
                    self.assertIn("error", body)
                    self.assertIn("message", body)
            self.assertGreater(n, 100)
            self.assertEqual(c.get("/healthz")[0], 200)
            rc, out = harness.verify(pg.conninfo)
            self.assertEqual(rc, 0, out)
        finally:
            d.stop()
