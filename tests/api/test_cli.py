"""ledgerctl, the command-line client: every command against a real ledgerd,
its exit statuses, and that it sends what was typed, unjudged."""
import json
import os
import subprocess
import tempfile

import harness

LEDGERCTL = os.environ.get("LEDGERCTL",
                           os.path.join(os.path.dirname(harness.LEDGERD), "ledgerctl"))


class CliTest(harness.LedgerdTestCase):

    def ctl(self, *args, stdin=None, url=None, token_file=None):
        """Runs ledgerctl; returns (exit status, parsed JSON answer or None, stderr)."""
        argv = [LEDGERCTL, "--url", url or "http://127.0.0.1:%d" % self.ledgerd.port]
        if token_file:
            argv += ["--token-file", token_file]
        p = subprocess.run(argv + list(args), input=stdin, capture_output=True, text=True,
                           timeout=60)
        out = p.stdout.strip()
        return p.returncode, json.loads(out) if out else None, p.stderr

    def test_accounts_are_created_read_and_refused_like_the_api_does(self):
        acc = self.uid("w@x:1")
        rc, body, _ = self.ctl("account", "create", acc, "USD", "--min-balance", "-50",
                               "--metadata", '{"owner": "ann"}')
        self.assertEqual(rc, 0, body)
        self.assertEqual((body["id"], body["min_balance"], body["metadata"]),
                         (acc, "-50", {"owner": "ann"}))
        rc, again, _ = self.ctl("account", "create", acc, "USD", "--min-balance", "-50",
                                "--metadata", '{"owner": "ann"}')
        self.assertEqual((rc, again["id"]), (0, acc))
        rc, body, _ = self.ctl("account", "create", acc, "EUR")
        self.assertEqual((rc, body["error"]), (1, "account_exists"))
        rc, body, _ = self.ctl("account", "create", self.uid("issuer"), "USD", "--unbounded")
        self.assertEqual((rc, body["min_balance"]), (0, None))
        rc, body, _ = self.ctl("account", "get", acc)
        self.assertEqual(rc, 0)
        self.assertEqual(body, self.c.get("/v1/accounts/" + acc)[1])
        rc, body, _ = self.ctl("account", "get", self.uid("nobody"))
        self.assertEqual((rc, body["error"]), (1, "account_not_found"))

    def test_dot_ids_are_ids(self):
        # "." and ".." are valid ids; as URL path steps they would be folded
        # away, and "account balance ." answered about an account "balance".
        for acc in (".", ".."):
            rc, body, _ = self.ctl("account", "create", acc, "USD")
            self.assertEqual((rc, body["id"]), (0, acc), body)
            rc, body, _ = self.ctl("account", "get", acc)
            self.assertEqual((rc, body["id"]), (0, acc), body)
            rc, body, _ = self.ctl("account", "balance", acc)
            self.assertEqual((rc, body["id"]), (0, acc), body)
            rc, body, _ = self.ctl("transfer", "get", acc)
            self.assertEqual((rc, body["error"]), (1, "transfer_not_found"), body)

    def test_transfers_replays_and_rejections(self):
        a, b = self.uid("a"), self.uid("b")
        self.c.account(a, min_balance=None)
        self.c.account(b)
        rc, t, _ = self.ctl("transfer", "create", self.uid("t1"), a, b, "250", "--metadata",
                            '{"order": 7}', "--expect-to-seq", "0")
        self.assertEqual(rc, 0, t)
        self.assertEqual((t["status"], t["amount"], t["to_balance"], t["replayed"]),
                         ("posted", "250", "250", False))
        rc, t, _ = self.ctl("transfer", "create", self.uid("t1"), a, b, "250")
        self.assertEqual((rc, t["replayed"]), (0, True))
        rc, t, _ = self.ctl("transfer", "create", self.uid("t2"), b, a, "251")
        self.assertEqual((rc, t["error"]), (1, "insufficient_funds"))
        # A negative amount is an argument, not an option, and ledgerd judges it.
        rc, t, _ = self.ctl("transfer", "create", self.uid("t3"), a, b, "-5")
        self.assertEqual((rc, t["error"]), (1, "invalid_amount"))
        rc, t, _ = self.ctl("transfer", "create", self.uid("t4"), a, b, "1", "--expect-from-seq",
                            "0")
        self.assertEqual((rc, t["error"]), (1, "seq_mismatch"))
        rc, t, _ = self.ctl("transfer", "get", self.uid("t1"))
        self.assertEqual((rc, t["status"], t["metadata"]), (0, "posted", {"order": 7}))
        self.assertEqual(self.c.balance(b), 250)

    def test_balance_at_a_time_and_entries_pages(self):
        a, b = self.uid("a"), self.uid("b")
        self.c.account(a, min_balance=None)
        self.c.account(b)
        for i, when in enumerate(["2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"]):
            status, _ = self.c.transfer(self.uid("t%d" % i), a, b, 10 * (i + 1), effective_at=when)
            self.assertEqual(status, 201)
        # A time with an offset, percent-encoded into the query string.
        rc, body, _ = self.ctl("account", "balance", b, "--at", "2024-01-01T12:00:00+02:00")
        self.assertEqual((rc, body["balance"], body["seq"]), (0, "10", 1))
        rc, body, _ = self.ctl("account", "balance", b)
        self.assertEqual((rc, body["balance"], body["seq"]), (0, "30", 2))
        rc, body, _ = self.ctl("account", "entries", b, "--after-seq", "0", "--limit", "1")
        self.assertEqual(rc, 0)
        self.assertEqual(([e["seq"] for e in body["entries"]], body["next_after_seq"]), ([1], 1))
        rc, body, _ = self.ctl("account", "entries", b, "--after-seq", "1")
        self.assertEqual(([e["amount"] for e in body["entries"]], body["next_after_seq"]),
                         (["20"], None))
        rc, body, _ = self.ctl("account", "entries", b, "--limit", "x")
        self.assertEqual((rc, body["error"]), (1, "invalid_request"))

    def test_pending_transfers_are_posted_and_voided(self):
        a, b = self.uid("a"), self.uid("b")
        self.c.account(a, min_balance=None)
        self.c.account(b)
        rc, t, _ = self.ctl("transfer", "create", self.uid("p1"), a, b, "100", "--pending",
                            "--timeout-s", "3600")
        self.assertEqual((rc, t["status"]), (0, "pending"))
        rc, t, _ = self.ctl("transfer", "post", self.uid("p1"), "--amount", "60")
        self.assertEqual((rc, t["status"], t["posted_amount"]), (0, "posted", "60"))
        rc, t, _ = self.ctl("transfer", "void", self.uid("p1"))
        self.assertEqual((rc, t["error"]), (1, "already_posted"))
        self.ctl("transfer", "create", self.uid("p2"), a, b, "5", "--pending")
        rc, t, _ = self.ctl("transfer", "void", self.uid("p2"))
        self.assertEqual((rc, t["status"]), (0, "voided"))
        rc, t, _ = self.ctl("transfer", "post", self.uid("nothing"))
        self.assertEqual((rc, t["error"]), (1, "pending_not_found"))
        self.assertEqual(self.c.balance(b), 60)

    def test_a_batch_is_read_from_standard_input_or_a_file(self):
        a, b = self.uid("a"), self.uid("b")
        self.c.account(a, min_balance=None)
        self.c.account(b)
        body = json.dumps({"atomic": True, "transfers": [
            {"id": self.uid("b1"), "from": a, "to": b, "amount": 7},
            {"id": self.uid("b2"), "from": b, "to": a, "amount": 8}]})
        rc, resp, _ = self.ctl("transfer", "batch", "-", stdin=body)
        self.assertEqual(rc, 0)  # a batch answers 200 even when its transfers fail
        self.assertEqual([r.get("error") for r in resp["results"]],
                         ["batch_failed", "insufficient_funds"])
        with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
            f.write(body.replace('"atomic": true', '"atomic": false'))
            f.flush()
            rc, resp, _ = self.ctl("transfer", "batch", f.name)
        self.assertEqual([r["status"] for r in resp["results"]], ["posted", "rejected"])
        self.assertEqual(self.c.balance(b), 7)

    def test_cost_tracked_accounts(self):
        bank, pos = self.uid("bank"), self.uid("pos")
        self.c.account(bank, currency="TOK", min_balance=None)
        rc, acc, _ = self.ctl("account", "create", pos, "TOK", "--cost-currencies", "USD,BRL")
        self.assertEqual((rc, sorted(acc["cost_currencies"])), (0, ["BRL", "USD"]))
        rc, t, _ = self.ctl("transfer", "create", self.uid("buy"), bank, pos, "2", "--currency",
                            "TOK", "--unit-cost", '{"USD": "1.5", "BRL": "7"}')
        self.assertEqual(rc, 0, t)
        rc, body, _ = self.ctl("account", "balance", pos)
        self.assertEqual(body["avg_cost"], {"USD": "1.500000000000000000",
                                            "BRL": "7.000000000000000000"})

    def test_bad_command_lines_make_no_request(self):
        acc = self.uid("never")
        bad = [("account", "create", acc),                      # no currency
               ("account", "create", acc, "USD", "--min-balance", "1", "--unbounded"),
               ("account", "create", acc, "USD", "--metadata", "{not json"),
               ("account", "create", acc, "USD", "--colour", "red"),
               ("account", "create", acc, "USD", "extra"),
               ("account", "frobnicate", acc),
               ("account", "get", acc, "--at", "2024-01-01T00:00:00Z"),
               ("transfer", "create", acc, "x", "y", "1", "--timeout-s", "soon"),
               ("transfer", "post", acc, "--amount"),
               ("transfer", "void", acc, "--amount", "1"),
               ("transfer", "batch", "/nonexistent/batch.json"),
               ("transfer",),
               ("account", "get", "x" * 2000),
               # Not UTF-8, so not a JSON string: refused, never left out.
               ("transfer", "post", acc, "--amount", b"\xff1"),
               ("transfer", "create", acc, "x", "y", "1", "--currency", b"\xff"),
               ("account", "create", acc, "USD", "--min-balance", b"-\xff"),
               ("account", "create", acc, "USD", "--cost-currencies", b"USD,\xff"),
               ("nonsense",),
               ("--url", "htp:/nowhere", "health"),
               ("--url", "notaurl", "health"),
               ("--url", "127.0.0.1:8080", "health"),
               ()]
        for args in bad:
            rc, body, err = self.ctl(*args)
            self.assertEqual(rc, 2, args)
            self.assertIsNone(body, args)
            self.assertIn("ledgerctl:", err, args)
        self.assertEqual(self.c.get("/v1/accounts/" + acc)[0], 404)

    def test_an_unreachable_server_is_exit_status_3(self):
        rc, body, err = self.ctl("health", url="http://127.0.0.1:%d" % harness.free_port())
        self.assertEqual((rc, body), (3, None))
        self.assertIn("ledgerctl:", err)
        rc, body, _ = self.ctl("health")
        self.assertEqual((rc, body["status"], body["database"]), (0, "ok", True))


class CliTokenTest(harness.LedgerdTestCase):
    """--token-file: the first token line of the file is sent."""

    @classmethod
    def setUpClass(cls):
        harness.cluster().reset()
        cls.server_tokens = harness.token_file("cli-token-1\n")
        cls.ledgerd = harness.Ledgerd(db=harness.cluster().conninfo,
                                      extra=("--token-file", cls.server_tokens))
        cls.c = cls.ledgerd.client(token="cli-token-1")

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        os.unlink(cls.server_tokens)

    ctl = CliTest.ctl

    def test_the_token_from_the_file_is_sent(self):
        with tempfile.NamedTemporaryFile("w") as f:
            f.write("# the client's token\n\n  cli-token-1  \nsecond-line-is-ignored\n")
            f.flush()
            rc, body, _ = self.ctl("account", "create", self.uid("a"), "USD", token_file=f.name)
            self.assertEqual((rc, body["id"]), (0, self.uid("a")))
        rc, body, _ = self.ctl("account", "get", self.uid("a"))
        self.assertEqual((rc, body["error"]), (1, "unauthorized"))
        with tempfile.NamedTemporaryFile("w") as f:
            f.write("# only comments\n\n")
            f.flush()
            rc, body, err = self.ctl("account", "get", self.uid("a"), token_file=f.name)
            self.assertEqual((rc, body), (2, None))
            self.assertIn("no token", err)
        # A line too long to be a token is refused, not cut into one.
        with tempfile.NamedTemporaryFile("w") as f:
            f.write("\ufeff# tokens\r\n" + "cli-token-1" + "x" * 5000 + "\r\n")
            f.flush()
            rc, body, err = self.ctl("account", "get", self.uid("a"), token_file=f.name)
            self.assertEqual((rc, body), (2, None))
            self.assertIn("longer than 4096 bytes", err)
