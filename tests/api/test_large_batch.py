"""A batch that creates 200 transfers or more writes its journal rows with
binary COPY (src/store/pg_copy.c); a smaller one, with one statement. The
same transfers must be stored the same way by both: this sends one list of
transfers as one batch request to one set of accounts, and one transfer
per request to a copy of those accounts, then compares every column of
the journal and of the pending states, row by row.
"""
import datetime
import json
import unittest

import harness

N = 260  # above PG_COPY_MIN_TRANSFERS (200), so the batch goes by COPY


def rfc3339(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LargeBatchTest(harness.LedgerdTestCase):
    def make_accounts(self, p):
        self.c.account(p + "issuer", min_balance=None)
        self.c.account(p + "w")
        self.c.account(p + "m", metadata={"k": "v"})
        self.c.account(p + "tok", currency="TOK", cost_currencies=["USD"])
        self.c.account(p + "tok-issuer", currency="TOK", min_balance=None)

    def transfers(self, p, t0):
        """N transfers in effective_at order, exercising every stored column."""
        out = []
        for i in range(N):
            eff = rfc3339(t0 + datetime.timedelta(milliseconds=i + 1))
            t = {"id": p + "t%03d" % i, "effective_at": eff}
            k = i % 6
            if k == 0:  # a huge amount: every base-10000 digit of a numeric
                t.update({"from": p + "issuer", "to": p + "w", "amount": str(10 ** 30 + i * 10 ** 17 + 7)})
            elif k == 1:  # round amounts: trailing zero digits are left out
                t.update({"from": p + "w", "to": p + "m", "amount": [10 ** 20, 10000, 1][i % 3]})
            elif k == 2:  # pending, with and without a timeout
                t.update({"from": p + "w", "to": p + "m", "amount": 1000 + i, "pending": True})
                if i % 4 == 2:
                    t["timeout_s"] = 3600
            elif k == 3:  # metadata that needs escaping in every text format
                t.update({"from": p + "m", "to": p + "w", "amount": 3,
                          "metadata": {"note": "tab\t quote\" back\\slash\nline \u00e9 \U0001F680",
                                       "i": i, "nested": [None, True, 1.5]}})
            elif k == 4:  # a unit cost into a tracked position
                t.update({"from": p + "tok-issuer", "to": p + "tok", "amount": 7 + i,
                          "unit_cost": {"USD": "%d.%06d" % (i, i * 7919 % 1000000)}})
            else:  # out of the position at its mean cost
                t.update({"from": p + "tok", "to": p + "tok-issuer", "amount": 2})
            out.append(t)
        return out

    def rows(self, p):
        """The journal and pending rows written for prefix p, in a comparable form."""
        like = "'%s%%'" % p
        strip = "substr(%%s, %d)" % (len(p) + 1)
        queries = [
            "SELECT json_agg(r ORDER BY r.x) FROM (SELECT " + strip % "t.ext_id" + " x,"
            " " + strip % "fa.ext_id" + " f, " + strip % "ta.ext_id" + " tt, t.amount, t.currency,"
            " t.pending, t.from_seq, t.to_seq, t.metadata, t.effective_at, t.timeout_s,"
            " t.unit_cost, t.created_at = (SELECT created_at FROM ledger.entries e"
            "  WHERE e.transfer_id = t.id LIMIT 1) created_ok"
            " FROM ledger.transfers t JOIN ledger.accounts fa ON fa.id = t.from_account_id"
            " JOIN ledger.accounts ta ON ta.id = t.to_account_id WHERE t.ext_id LIKE " + like + ") r",
            "SELECT json_agg(r ORDER BY r.a, r.seq) FROM (SELECT " + strip % "a.ext_id" + " a,"
            " e.seq, " + strip % "t.ext_id" + " x, e.kind, e.amount, e.pending_change, e.balance,"
            " e.pending_out, e.pending_in, e.avg_cost, e.effective_at,"
            " " + strip % "e.transfer_ext_id" + " ex, e.transfer_id = t.id tid_ok"
            " FROM ledger.entries e JOIN ledger.accounts a ON a.id = e.account_id"
            " JOIN ledger.transfers t ON t.id = e.transfer_id WHERE a.ext_id LIKE " + like + ") r",
            "SELECT json_agg(r ORDER BY r.x) FROM (SELECT " + strip % "t.ext_id" + " x, p.state,"
            " p.deadline - t.created_at deadline_after, p.posted_amount"
            " FROM ledger.pending_transfers p JOIN ledger.transfers t ON t.id = p.transfer_id"
            " WHERE t.ext_id LIKE " + like + ") r",
        ]
        return [json.loads(self.pg.psql(q)[1]) for q in queries]

    def test_copy_and_statement_store_the_same_rows(self):
        self.pg = harness.cluster()
        t0 = datetime.datetime.utcnow() - datetime.timedelta(minutes=5)
        for p in ("big-", "one-"):
            self.make_accounts(p)
            status, r = self.c.transfer(p + "fund", p + "issuer", p + "m", 10 ** 6,
                                        effective_at=rfc3339(t0))
            self.assertEqual(status, 201, r)

        status, resp = self.c.post("/v1/transfers/batch",
                                   {"transfers": self.transfers("big-", t0), "atomic": False})
        self.assertEqual(status, 200, resp)
        rejected = [r for r in resp["results"] if r["status"] == "rejected"]
        self.assertEqual(rejected, [])
        for t in self.transfers("one-", t0):
            status, r = self.c.post("/v1/transfers", t)
            self.assertEqual(status, 201, (t, r))

        big, one = self.rows("big-"), self.rows("one-")
        transfers, entries, pending = big
        self.assertEqual(len(transfers), N + 1)
        self.assertEqual(len(entries), 2 * (N + 1))
        self.assertEqual(len(pending), N // 6 + (1 if N % 6 > 2 else 0))
        self.assertTrue(all(t["created_ok"] for t in transfers))
        self.assertTrue(all(e["tid_ok"] and e["ex"] == e["x"] for e in entries))
        note = [t["metadata"] for t in transfers if t["metadata"]][0]["note"]
        self.assertEqual(note, "tab\t quote\" back\\slash\nline \u00e9 \U0001F680")
        self.assertIn("1000000000000000000000000000007", [str(t["amount"]) for t in transfers])
        self.assertTrue(any(e["avg_cost"] for e in entries))
        self.assertTrue(any(str(e["balance"]).startswith("-") for e in entries))
        for name, b, o in zip(("transfers", "entries", "pending"), big, one):
            self.assertEqual(len(b), len(o), name)
            for x, y in zip(b, o):
                self.assertEqual(x, y, name)
        code, out = harness.verify(self.pg.conninfo)
        self.assertEqual(code, 0, out)


if __name__ == "__main__":
    unittest.main()
