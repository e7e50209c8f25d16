"""Accounts: POST /v1/accounts and GET /v1/accounts/{id} (SPEC sections 2 and 3)."""
import datetime
import json
import re
import unittest
import urllib.parse

import harness

TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
I128_MIN = -(2 ** 127)
I128_MAX = 2 ** 127 - 1


def parse_time(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)


class AccountsTest(harness.LedgerdTestCase):

    # helpers

    def get_account(self, id):
        return self.c.get("/v1/accounts/" + urllib.parse.quote(id, safe=""))

    def assert_absent(self, id, what=""):
        status, body = self.get_account(id)
        self.assert_error(status, body, 404, "account_not_found", "GET %r after %s" % (id, what))

    def assert_refused(self, body, what, check_id=None, raw=None):
        status, resp = self.c.post("/v1/accounts", body=body, raw=raw)
        self.assert_error(status, resp, 400, "invalid_request", what)
        if check_id is not None:
            self.assert_absent(check_id, what)

    # creation

    def test_create_returns_every_field(self):
        id = self.uid()
        before = datetime.datetime.now(datetime.timezone.utc)
        status, acc = self.c.post("/v1/accounts", {"id": id, "currency": "USD",
                                                   "metadata": {"owner": "ann", "n": [1, 2]}})
        after = datetime.datetime.now(datetime.timezone.utc)
        self.assertEqual(status, 201, acc)
        self.assertEqual(acc["id"], id)
        self.assertEqual(acc["currency"], "USD")
        self.assertEqual(acc["min_balance"], "0")
        self.assertEqual(acc["metadata"], {"owner": "ann", "n": [1, 2]})
        for field in ("balance", "pending_out", "pending_in", "available"):
            self.assertEqual(acc[field], "0", field)
            self.assertIsInstance(acc[field], str)
        self.assertEqual(acc["seq"], 0)
        self.assertIs(type(acc["seq"]), int)
        self.assertRegex(acc["created_at"], TIME_RE)
        created = parse_time(acc["created_at"])
        self.assertGreaterEqual(created, before - datetime.timedelta(seconds=2))
        self.assertLessEqual(created, after + datetime.timedelta(seconds=2))
        # GET returns the same account and state.
        status, got = self.get_account(id)
        self.assertEqual(status, 200, got)
        self.assertEqual(got, acc)

    def test_create_without_metadata(self):
        id = self.uid()
        status, acc = self.c.post("/v1/accounts", {"id": id, "currency": "EUR"})
        self.assertEqual(status, 201, acc)
        self.assertEqual(acc["id"], id)
        self.assertEqual(acc["currency"], "EUR")
        self.assertIn(acc.get("metadata"), (None, {}))
        self.assertEqual(acc["balance"], "0")
        self.assertEqual(self.get_account(id)[0], 200)

    def test_metadata_numbers_read_back_as_sent(self):
        # jsonb writes 1e19 as 10000000000000000000, an integer a 64-bit
        # JSON reader cannot hold; 1e300 must not come back as the 17-digit
        # double 1.0000000000000001e300.
        id = self.uid()
        raw = ('{"id": "%s", "currency": "USD",'
               ' "metadata": {"n": 1e19, "f": 1e300, "x": 0.1, "keep": "me"}}')
        status, acc = self.c.post("/v1/accounts", raw=raw % id)
        self.assertEqual(status, 201, acc)
        want = {"n": 10 ** 19, "f": 10 ** 300, "x": 0.1, "keep": "me"}
        self.assertEqual(acc["metadata"], want)
        status, got = self.get_account(id)
        self.assertEqual((status, got["metadata"]), (200, want))
        status, again = self.c.post("/v1/accounts", raw=raw % id)
        self.assertEqual((status, again["metadata"]), (200, want))

    def test_metadata_numbers_a_double_would_change_are_refused(self):
        # Stored changed, 12345678901234567.5 would read back as
        # 12345678901234568: refused instead, nothing created, for accounts,
        # transfers and batch items alike.
        for number in ("12345678901234567.5", "1.00000000000000000001", "1e-400",
                       "9007199254740993.0"):
            id = self.uid()
            raw = '{"id": "%s", "currency": "USD", "metadata": {"a": [1, {"n": %s}]}}'
            status, resp = self.c.post("/v1/accounts", raw=raw % (id, number))
            self.assert_error(status, resp, 400, "invalid_request", number)
            self.assertIn("metadata holds the number " + number, resp["message"])
            self.assertEqual(self.get_account(id)[0], 404, number)
        # The key as jansson decodes it: an escaped "metadata" is metadata.
        id = self.uid()
        raw = '{"id": "%s", "currency": "USD", "meta\\u0064ata": {"n": 12345678901234567.5}}'
        status, resp = self.c.post("/v1/accounts", raw=raw % id)
        self.assert_error(status, resp, 400, "invalid_request", "escaped key")
        self.assertEqual(self.get_account(id)[0], 404)
        w, a = self.uid("w"), self.uid("a")
        self.assertEqual(self.c.post("/v1/accounts", {"id": w, "currency": "USD",
                                                      "min_balance": None})[0], 201)
        self.assertEqual(self.c.post("/v1/accounts", {"id": a, "currency": "USD"})[0], 201)
        tid = self.uid("t")
        raw = '{"id": "%s", "from": "%s", "to": "%s", "amount": 5, "metadata": {"n": 0.12345678901234567890}}'
        status, resp = self.c.post("/v1/transfers", raw=raw % (tid, w, a))
        self.assert_error(status, resp, 400, "invalid_request", "transfer")
        raw = ('{"transfers": [{"id": "%s", "from": "%s", "to": "%s", "amount": 5},'
               ' {"id": "%s-2", "from": "%s", "to": "%s", "amount": 5, "metadata": {"n": -1.000000000000000000001}}]}')
        status, resp = self.c.post("/v1/transfers/batch", raw=raw % (tid, w, a, tid, w, a))
        self.assert_error(status, resp, 400, "invalid_request", "batch")
        self.assertEqual(self.c.get("/v1/transfers/" + tid)[0], 404)
        self.assertEqual(self.get_account(a)[1]["balance"], "0")
        # As many digits as a double keeps are stored as sent.
        raw = '{"id": "%s", "from": "%s", "to": "%s", "amount": 5, "metadata": {"n": 123456789012345.6, "m": 1.0}}'
        status, resp = self.c.post("/v1/transfers", raw=raw % (tid, w, a))
        self.assertEqual(status, 201, resp)
        status, got = self.c.get("/v1/transfers/" + tid)
        self.assertEqual(got["metadata"], {"n": 123456789012345.6, "m": 1})

    def test_identical_create_again_returns_200(self):
        id = self.uid()
        body = {"id": id, "currency": "USD", "min_balance": "-250",
                "metadata": {"a": 1, "b": {"x": "y", "z": [1, 2, 3]}}}
        status, first = self.c.post("/v1/accounts", body)
        self.assertEqual(status, 201, first)
        status, again = self.c.post("/v1/accounts", body)
        self.assertEqual(status, 200, again)
        self.assertEqual(again, first)
        # Key order does not matter, and min_balance compares as a number.
        reordered = json.loads('{"metadata": {"b": {"z": [1, 2, 3], "x": "y"}, "a": 1},'
                               ' "min_balance": -250, "currency": "USD", "id": "%s"}' % id)
        status, again = self.c.post("/v1/accounts", reordered)
        self.assertEqual(status, 200, again)
        self.assertEqual(again, first)
        status, got = self.get_account(id)
        self.assertEqual(got, first)

    def test_identical_with_default_min_balance(self):
        id = self.uid()
        status, first = self.c.post("/v1/accounts", {"id": id, "currency": "USD"})
        self.assertEqual(status, 201, first)
        for variant in ({"min_balance": "0"}, {"min_balance": 0}, {}):
            body = {"id": id, "currency": "USD"}
            body.update(variant)
            status, again = self.c.post("/v1/accounts", body)
            self.assertEqual(status, 200, (variant, again))
            self.assertEqual(again, first)

    def test_different_body_is_account_exists(self):
        id = self.uid()
        body = {"id": id, "currency": "USD", "min_balance": "-10", "metadata": {"k": "v", "n": 1}}
        status, first = self.c.post("/v1/accounts", body)
        self.assertEqual(status, 201, first)
        variants = [
            ("currency", {"currency": "EUR"}),
            ("min_balance", {"min_balance": "-11"}),
            ("min_balance 0", {"min_balance": "0"}),
            ("min_balance null", {"min_balance": None}),
            ("min_balance default", {"min_balance": "<absent>"}),
            ("metadata value", {"metadata": {"k": "w", "n": 1}}),
            ("metadata extra key", {"metadata": {"k": "v", "n": 1, "o": 2}}),
            ("metadata fewer keys", {"metadata": {"k": "v"}}),
            ("metadata nested type", {"metadata": {"k": "v", "n": "1"}}),
            ("metadata absent", {"metadata": "<absent>"}),
        ]
        for what, change in variants:
            other = dict(body)
            for k, v in change.items():
                if v == "<absent>":
                    del other[k]
                else:
                    other[k] = v
            status, resp = self.c.post("/v1/accounts", other)
            self.assert_error(status, resp, 409, "account_exists", what)
        status, got = self.get_account(id)
        self.assertEqual(status, 200)
        self.assertEqual(got, first, "a refused create must not change the account")

    def test_unbounded_account_exists_vs_bounded(self):
        id = self.uid()
        status, first = self.c.post("/v1/accounts", {"id": id, "currency": "USD",
                                                     "min_balance": None})
        self.assertEqual(status, 201, first)
        self.assertIsNone(first["min_balance"])
        status, resp = self.c.post("/v1/accounts", {"id": id, "currency": "USD"})
        self.assert_error(status, resp, 409, "account_exists", "null then default")
        status, again = self.c.post("/v1/accounts", {"id": id, "currency": "USD",
                                                     "min_balance": None})
        self.assertEqual(status, 200, again)
        self.assertEqual(again, first)

    def test_min_balance_forms(self):
        cases = [
            ("default", "<absent>", "0"),
            ("null", None, None),
            ("neg_string", "-500", "-500"),
            ("neg_int", -500, "-500"),
            ("zero_int", 0, "0"),
            ("pos_string", "250", "250"),
            ("i128_min", str(I128_MIN), str(I128_MIN)),
            ("neg_int64", -(2 ** 63), str(-(2 ** 63))),
        ]
        for name, given, expected in cases:
            body = {"id": self.uid(name), "currency": "USD"}
            if given != "<absent>":
                body["min_balance"] = given
            status, acc = self.c.post("/v1/accounts", body)
            self.assertEqual(status, 201, (name, acc))
            self.assertEqual(acc["min_balance"], expected, name)
            status, got = self.get_account(body["id"])
            self.assertEqual(got["min_balance"], expected, name)

    def test_valid_id_and_currency_edges(self):
        cases = [
            ("A" * 64, "USD"),
            ("x", "A"),
            ("az.AZ_09:@-" + self.uid(), "X" * 16),
            (self.uid("cur"), "USD_2"),
        ]
        for id, cur in cases:
            status, acc = self.c.post("/v1/accounts", {"id": id, "currency": cur})
            self.assertEqual(status, 201, (id, cur, acc))
            self.assertEqual(acc["id"], id)
            self.assertEqual(acc["currency"], cur)
            status, got = self.get_account(id)
            self.assertEqual(status, 200, (id, got))
            self.assertEqual(got["id"], id)

    def test_ids_are_case_sensitive(self):
        lower, upper = self.uid("abc"), self.uid("ABC")
        status, a = self.c.post("/v1/accounts", {"id": lower, "currency": "USD"})
        self.assertEqual(status, 201, a)
        status, b = self.c.post("/v1/accounts", {"id": upper, "currency": "EUR"})
        self.assertEqual(status, 201, b)
        self.assertEqual(self.get_account(lower)[1]["currency"], "USD")
        self.assertEqual(self.get_account(upper)[1]["currency"], "EUR")

    def test_get_unknown_account(self):
        self.assert_absent(self.uid("nobody"), "nothing")
        status, body = self.c.get("/v1/accounts/" + self.uid("nobody"))
        self.assertNotIn("id", body)

    # refusals

    def test_bad_ids(self):
        long_id = "b" * 65
        cases = [
            ("empty", ""),
            ("65 chars", long_id),
            ("space", "bad id"),
            ("slash", "bad/id"),
            ("unicode", "caf\u00e9"),
            ("plus", "a+b"),
            ("hash", "a#b"),
            ("percent", "a%20b"),
            ("nul", "a\u0000b"),
            ("newline", "a\nb"),
        ]
        for what, id in cases:
            self.assert_refused({"id": id, "currency": "USD"}, "id " + what)
            if id:
                status, resp = self.get_account(id)
                self.assertNotEqual(status, 200, "%s: %r was created" % (what, id))
        # A truncated or cut form of a bad id was not created either.
        self.assert_absent("b" * 64, "65-char id")
        self.assert_absent("caf", "unicode id")
        self.assert_absent("bad", "id with space")
        self.assert_absent("a", "id with nul")

    def test_bad_currencies(self):
        cases = [
            ("lowercase", "usd"),
            ("mixed case", "Usd"),
            ("17 chars", "A" * 17),
            ("empty", ""),
            ("space", "US D"),
            ("dash", "US-D"),
            ("unicode", "\u00c9UR"),
            ("number", 840),
            ("null", None),
            ("list", ["USD"]),
        ]
        for what, cur in cases:
            id = self.uid(str(len(what)) + what.replace(" ", "_"))
            self.assert_refused({"id": id, "currency": cur}, "currency " + what, check_id=id)

    def test_unknown_field(self):
        id = self.uid()
        self.assert_refused({"id": id, "currency": "USD", "colour": "red"}, "unknown field",
                            check_id=id)
        self.assert_refused({"id": id, "currency": "USD", "balance": "100"},
                            "state field balance", check_id=id)
        self.assert_refused({"id": id, "currency": "USD", "seq": 0}, "state field seq",
                            check_id=id)

    def test_missing_fields(self):
        id = self.uid()
        self.assert_refused({"currency": "USD"}, "missing id")
        self.assert_refused({"id": id}, "missing currency", check_id=id)
        self.assert_refused({}, "empty object")

    def test_wrong_types(self):
        cases = [
            ("id number", {"id": 123, "currency": "USD"}, "123"),
            ("id list", {"id": ["x"], "currency": "USD"}, None),
            ("id null", {"id": None, "currency": "USD"}, None),
            ("min_balance bool", {"currency": "USD", "min_balance": True}, "mb_bool"),
            ("min_balance float", {"currency": "USD", "min_balance": -1.5}, "mb_float"),
            ("min_balance decimal string", {"currency": "USD", "min_balance": "-1.5"}, "mb_dec"),
            ("min_balance text", {"currency": "USD", "min_balance": "abc"}, "mb_text"),
            ("min_balance empty", {"currency": "USD", "min_balance": ""}, "mb_empty"),
            ("min_balance object", {"currency": "USD", "min_balance": {}}, "mb_obj"),
            ("min_balance plus", {"currency": "USD", "min_balance": "+5"}, "mb_plus"),
            ("min_balance beyond i128", {"currency": "USD",
                                         "min_balance": str(I128_MIN - 1)}, "mb_range"),
            ("metadata string", {"currency": "USD", "metadata": "x"}, "md_str"),
            ("metadata list", {"currency": "USD", "metadata": [1, 2]}, "md_list"),
            ("metadata number", {"currency": "USD", "metadata": 5}, "md_num"),
            ("metadata bool", {"currency": "USD", "metadata": True}, "md_bool"),
        ]
        for what, body, id in cases:
            if id is not None and "id" not in body:
                id = self.uid(id)
                body["id"] = id
            self.assert_refused(body, what, check_id=id)

    def test_cost_currencies(self):
        for what, costs in (("not a list", "USD"), ("bad code", ["usd"]), ("twice", ["USD", "USD"]),
                            ("nine", ["C%d" % i for i in range(9)]), ("number", [1])):
            id = self.uid()
            self.assert_refused({"id": id, "currency": "TOK", "cost_currencies": costs},
                                "cost_currencies " + what, check_id=id)
        id = self.uid()
        status, acc = self.c.post("/v1/accounts", {"id": id, "currency": "TOK",
                                                   "cost_currencies": ["USD", "BRL"]})
        self.assertEqual(status, 201, acc)
        self.assertEqual(acc["cost_currencies"], ["USD", "BRL"])  # as given
        self.assertEqual(acc["avg_cost"], {"BRL": "0.000000000000000000",
                                           "USD": "0.000000000000000000"})
        # The list is a set: the same currencies in another order are identical.
        status, again = self.c.post("/v1/accounts", {"id": id, "currency": "TOK",
                                                     "cost_currencies": ["BRL", "USD"]})
        self.assertEqual(status, 200, again)
        self.assertEqual(again["cost_currencies"], ["USD", "BRL"])  # the stored account
        status, again = self.c.get("/v1/accounts/" + id)
        self.assertEqual((status, again["cost_currencies"]), (200, ["USD", "BRL"]))
        status, body = self.c.post("/v1/accounts", {"id": id, "currency": "TOK",
                                                    "cost_currencies": ["USD"]})
        self.assertEqual((status, body["error"]), (409, "account_exists"))
        # null is absent, as for metadata: no cost tracked.
        id = self.uid("null")
        status, acc = self.c.post("/v1/accounts", {"id": id, "currency": "TOK",
                                                   "cost_currencies": None})
        self.assertEqual((status, acc["cost_currencies"]), (201, []))
        status, again = self.c.post("/v1/accounts", {"id": id, "currency": "TOK"})
        self.assertEqual(status, 200, again)

    def test_metadata_size_limit(self):
        def meta_of_size(n):
            # {"k":"xxx..."} serialized compactly is n bytes
            m = {"k": "x" * (n - len('{"k":""}'))}
            self.assertEqual(len(json.dumps(m, separators=(",", ":"))), n)
            return m
        over = self.uid("over")
        self.assert_refused({"id": over, "currency": "USD", "metadata": meta_of_size(4097)},
                            "metadata 4097 bytes", check_id=over)
        big = self.uid("big")
        self.assert_refused({"id": big, "currency": "USD", "metadata": meta_of_size(10000)},
                            "metadata 10000 bytes", check_id=big)
        at = self.uid("at")
        raw = json.dumps({"id": at, "currency": "USD", "metadata": meta_of_size(4096)},
                         separators=(",", ":"))
        status, acc = self.c.post("/v1/accounts", raw=raw)
        self.assertEqual(status, 201, "metadata of exactly 4096 bytes must be accepted: %r"
                         % (acc if status != 201 else ""))
        self.assertEqual(acc["metadata"], meta_of_size(4096))
        # Control characters count as their short escapes (\n: 2 bytes).
        nl = self.uid("nl")
        meta = {"k": "\n" * 2044}  # {"k":"\n\n..."}: 8 + 2 * 2044 = 4096 bytes
        status, acc = self.c.post("/v1/accounts", {"id": nl, "currency": "USD",
                                                   "metadata": meta})
        self.assertEqual((status, acc.get("metadata")), (201, meta))
        nl2 = self.uid("nl2")
        self.assert_refused({"id": nl2, "currency": "USD", "metadata": {"k": "\n" * 2045}},
                            "metadata 4098 bytes of newlines", check_id=nl2)

    def test_malformed_bodies(self):
        id = self.uid()
        cases = [
            ("truncated JSON", '{"id": "%s", "currency": "US' % id),
            ("missing close", '{"id": "%s", "currency": "USD"' % id),
            ("trailing garbage", '{"id": "%s", "currency": "USD"} x' % id),
            ("single quotes", "{'id': '%s', 'currency': 'USD'}" % id),
            ("trailing comma", '{"id": "%s", "currency": "USD",}' % id),
            ("empty body", ""),
            ("whitespace body", "   "),
            ("JSON array", json.dumps([{"id": id, "currency": "USD"}])),
            ("JSON string", json.dumps("x")),
            ("JSON null", "null"),
            ("JSON number", "42"),
            ("not JSON", "id=%s&currency=USD" % id),
        ]
        for what, raw in cases:
            self.assert_refused(None, what, check_id=id, raw=raw)


if __name__ == "__main__":
    unittest.main()
