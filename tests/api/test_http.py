"""HTTP surface: body limit, routing, robustness, /healthz, /metrics, --token-file
(SPEC sections 1 and 3)."""
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import harness

BODY_MAX = 16 * 1024 * 1024


def read_response(sock, timeout=10):
    """Reads one HTTP response from a raw socket: (status, headers dict, body bytes)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("connection closed before a response: %r" % data)
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body[:length]


class HttpTestCase(harness.LedgerdTestCase):

    def connect(self):
        return socket.create_connection(("127.0.0.1", self.ledgerd.port), timeout=10)

    def assert_json_error(self, status, body, code=None):
        self.assertIsInstance(body, dict, body)
        self.assertIsInstance(body.get("error"), str, body)
        self.assertTrue(body["error"])
        self.assertIsInstance(body.get("message"), str, body)
        self.assertTrue(body["message"].strip())
        if code:
            self.assertEqual(body["error"], code, body)

    def assert_healthy(self):
        status, body = harness.Client(self.ledgerd.port).get("/healthz")
        self.assertEqual(status, 200, body)
        self.assertIsNone(self.ledgerd.proc.poll(), "ledgerd exited")


class BodyLimitTest(HttpTestCase):
    def test_413_with_content_length_before_the_body_is_sent(self):
        w, a = self.uid("w"), self.uid("a")
        self.c.account(w, min_balance=None)
        self.c.account(a)
        start = json.dumps({"id": self.uid("t"), "from": w, "to": a, "amount": 5}).encode()
        with self.connect() as s:
            s.sendall(b"POST /v1/transfers HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 17000000\r\n\r\n"
                      + start[:20])
            started = time.time()
            status, headers, body = read_response(s, timeout=10)
        self.assertLess(time.time() - started, 5, "413 must not wait for the body")
        self.assertEqual(status, 413)
        self.assertTrue(headers.get("content-type", "").startswith("application/json"), headers)
        self.assert_json_error(status, json.loads(body), "body_too_large")
        # The whole transfer, over the limit by padding: refused, not applied.
        padded = start[:-1] + b" " * (BODY_MAX + 1 - len(start)) + b"}"
        self.assertEqual(len(padded), BODY_MAX + 1)
        with self.connect() as s:
            s.sendall(b"POST /v1/transfers HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                      % len(padded))
            try:
                s.sendall(padded[:1 << 20])
            except OSError:
                pass  # refused before it was read whole: the server may have closed already
            # The answer comes while most of the body is still unsent.
            status, headers, body = read_response(s)
        self.assertEqual(status, 413)
        self.assert_json_error(status, json.loads(body), "body_too_large")
        status, resp = self.c.get("/v1/transfers/" + self.uid("t"))
        self.assertEqual(status, 404, resp)
        self.assertEqual(self.c.balance(a), 0)
        self.assert_healthy()

    def test_413_for_other_endpoints(self):
        for path in ("/v1/accounts", "/v1/transfers/batch"):
            with self.connect() as s:
                s.sendall(b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n{"
                          % (path.encode(), BODY_MAX + 1))
                status, headers, body = read_response(s)
            self.assertEqual(status, 413, path)
            self.assert_json_error(status, json.loads(body), "body_too_large")

    def test_413_for_chunked_body_over_the_limit(self):
        id = self.uid("acct")
        body = json.dumps({"id": id, "currency": "USD"}).encode()
        body = body[:-1] + b" " * (BODY_MAX + 4096 - len(body)) + b"}"
        with self.connect() as s:
            s.sendall(b"POST /v1/accounts HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            try:
                step = 1 << 20
                for i in range(0, len(body), step):
                    part = body[i:i + step]
                    s.sendall(b"%x\r\n" % len(part) + part + b"\r\n")
                s.sendall(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
            status, headers, resp = read_response(s)
        self.assertEqual(status, 413)
        self.assert_json_error(status, json.loads(resp), "body_too_large")
        status, resp = self.c.get("/v1/accounts/" + id)
        self.assertEqual(status, 404, resp)
        self.assert_healthy()

    def test_a_chunked_body_far_over_the_limit_is_cut_off(self):
        # Read and dropped so that its 413 can go out when it ends, but not
        # for ever: past another 16 MiB the connection is closed.
        chunk = b" " * (1 << 20)
        sent = 0
        with self.connect() as s:
            s.sendall(b"POST /v1/accounts HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            try:
                while sent < 200 << 20:
                    s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                    sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass
        self.assertLess(sent, 64 << 20)
        self.assert_healthy()

    def test_bodies_arriving_at_once_share_a_budget(self):
        """Each body may take 16 MiB, but all of them together 128 MiB: one
        that does not fit is refused with 503 before it is read, applying
        nothing, and fits again once others are done."""
        w, a = self.uid("w"), self.uid("a")
        self.c.account(w, min_balance=None)
        self.c.account(a)
        length = BODY_MAX - 4096
        held = []
        try:
            for _ in range(8):  # 8 x (16 MiB - 4 KiB) leave 32 KiB of 128 MiB
                s = self.connect()
                s.sendall(b"POST /v1/transfers HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n{"
                          % length)
                held.append(s)
            time.sleep(0.3)
            t = json.dumps({"id": self.uid("t"), "from": w, "to": a, "amount": 5}).encode()
            padded = t[:-1] + b" " * (2 << 20) + b"}"
            with self.connect() as s:
                s.sendall(b"POST /v1/transfers HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                          % len(padded))
                status, headers, body = read_response(s, timeout=10)
            self.assertEqual(status, 503, body)
            self.assert_json_error(status, json.loads(body), "unavailable")
            self.assertEqual(headers.get("retry-after"), "1")
            # A small body still fits in what is left.
            status, resp = self.c.transfer(self.uid("small"), w, a, 1)
            self.assertEqual(status, 201, resp)
        finally:
            for s in held:
                s.close()
        self.assertEqual(self.c.get("/v1/transfers/" + self.uid("t"))[0], 404)
        deadline = time.time() + 10
        while True:
            status, resp = self.c.post("/v1/transfers", raw=padded)
            if status != 503 or time.time() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(status, 201, resp)
        self.assertEqual(self.c.balance(a), 6)

    def test_small_chunked_body_is_accepted(self):
        id = self.uid("acct")
        body = json.dumps({"id": id, "currency": "USD"}).encode()
        with self.connect() as s:
            s.sendall(b"POST /v1/accounts HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                      + b"%x\r\n" % 10 + body[:10] + b"\r\n"
                      + b"%x\r\n" % (len(body) - 10) + body[10:] + b"\r\n0\r\n\r\n")
            status, headers, resp = read_response(s)
        self.assertEqual(status, 201, resp)
        self.assertEqual(json.loads(resp)["id"], id)

    def test_body_of_exactly_16_mib_is_accepted(self):
        id = self.uid("acct")
        body = json.dumps({"id": id, "currency": "USD"}).encode()
        body = body[:-1] + b" " * (BODY_MAX - len(body)) + b"}"
        self.assertEqual(len(body), BODY_MAX)
        status, resp = self.c.post("/v1/accounts", raw=body)
        self.assertEqual(status, 201, resp)
        self.assertEqual(resp["id"], id)


class RoutingTest(HttpTestCase):
    def test_unknown_paths_are_404_json(self):
        for path in ("/", "/nope", "/v1", "/v1/", "/v1/nope", "/v2/accounts/x",
                     "/v1/accounts/x/nope", "/v1/accounts/x/entries/1", "/v1/transfers/x/nope",
                     "/healthz/x", "/v1/accounts/x/"):
            status, body = self.c.get(path)
            self.assertEqual(status, 404, path)
            self.assert_json_error(status, body)

    def test_routes_without_query_parameters_refuse_any(self):
        # A parameter the client meant must not be dropped silently, least
        # of all on a request that moves money.
        w, a = self.uid("w"), self.uid("a")
        self.c.account(w, min_balance=None)
        self.c.account(a)
        t = {"id": self.uid("t"), "from": w, "to": a, "amount": 5}
        cases = [("POST", "/v1/transfers?dry_run=1", t),
                 ("POST", "/v1/transfers/batch?dry_run=1", {"transfers": [t], "atomic": True}),
                 ("POST", "/v1/accounts?x=1", {"id": self.uid("b"), "currency": "USD"}),
                 ("GET", "/v1/accounts/%s?x=1" % a, None),
                 ("GET", "/v1/transfers/%s?x=1" % t["id"], None)]
        for method, path, body in cases:
            status, resp = self.c.request(method, path, body=body)
            self.assertEqual(status, 400, (path, resp))
            self.assert_json_error(status, resp, "invalid_request")
            self.assertIn("query parameter", resp["message"], path)
        self.assertEqual(self.c.balance(a), 0)
        status, resp = self.c.get("/v1/accounts/" + self.uid("b"))
        self.assertEqual(status, 404, resp)
        # A pending transfer's post and void refuse them too.
        status, resp = self.c.transfer(self.uid("p"), w, a, 5, pending=True)
        self.assertEqual(status, 201, resp)
        for verb in ("post", "void"):
            status, resp = self.c.request("POST", "/v1/transfers/%s/%s?x=1" % (self.uid("p"), verb),
                                          body={})
            self.assertEqual(status, 400, (verb, resp))
        status, resp = self.c.get("/v1/transfers/" + self.uid("p"))
        self.assertEqual((status, resp["status"]), (200, "pending"))
        # Without the parameter, the same requests go through.
        status, resp = self.c.request("POST", "/v1/transfers", body=t)
        self.assertEqual(status, 201, resp)

    def test_a_path_has_one_spelling(self):
        # Empty segments, spelt or escaped, name no endpoint: a path that
        # the router accepts is the one the token check sees.
        a = self.uid("a")
        self.c.account(a)
        for path in ("//v1/accounts/" + a, "///v1/accounts/" + a, "/v1//accounts/" + a,
                     "/v1/accounts//" + a, "/%2Fv1/accounts/" + a, "//healthz", "//metrics"):
            status, body = self.c.get(path)
            self.assertEqual(status, 404, path)
            self.assert_json_error(status, body)
        status, body = self.c.post("//v1/accounts", {"id": self.uid("b"), "currency": "USD"})
        self.assertEqual(status, 404, body)
        status, body = self.c.get("/v1/accounts/" + self.uid("b"))
        self.assertEqual(status, 404, body)

    def test_escaped_nul_and_slash_route_nowhere(self):
        # Decoded before routing, %00 would end the path early and %2F add
        # a segment: another endpoint than the one the path spells.
        w, a = self.uid("w"), self.uid("a")
        self.c.account(w, min_balance=None)
        self.c.account(a)
        t = {"id": self.uid("t"), "from": w, "to": a, "amount": 1}
        p = self.uid("p")
        self.assertEqual(self.c.transfer(p, w, a, 5, pending=True)[0], 201)
        cases = [("POST", "/v1/transfers%00/" + p + "/post", t),
                 ("POST", "/v1/transfers/batch%00/void", {"transfers": [t]}),
                 ("POST", "/v1/transfers%2F" + p + "/void", {}),
                 ("GET", "/v1/accounts/%s%%2Fbalance" % a, None),
                 ("GET", "/v1/accounts/%s%%00/entries" % a, None),
                 ("GET", "/v1/accounts/%s%%00" % a, None),
                 ("GET", "/healthz%00", None)]
        for method, path, body in cases:
            status, resp = self.c.request(method, path, body=body)
            self.assertIn(status, (400, 404), (path, resp))
            self.assert_json_error(status, resp)
        self.assertEqual(self.c.balance(a), 0)
        status, resp = self.c.get("/v1/transfers/" + p)
        self.assertEqual((status, resp["status"]), (200, "pending"))
        self.assertEqual(self.c.get("/v1/transfers/" + t["id"])[0], 404)
        # Other escapes are decoded: %3A is an id's ':'.
        self.c.account(self.uid("x:y"))
        status, resp = self.c.get("/v1/accounts/" + self.uid("x%3Ay"))
        self.assertEqual((status, resp.get("id")), (200, self.uid("x:y")))

    def test_wrong_methods_are_405_naming_the_allowed_one(self):
        cases = [("DELETE", "/v1/accounts/x"), ("PUT", "/v1/accounts"), ("GET", "/v1/accounts"),
                 ("PATCH", "/v1/transfers/x"), ("PUT", "/v1/transfers"), ("GET", "/v1/transfers"),
                 ("POST", "/v1/accounts/x"), ("POST", "/v1/accounts/x/entries"),
                 ("GET", "/v1/transfers/x/post"), ("DELETE", "/v1/transfers/batch"),
                 ("POST", "/healthz"), ("POST", "/metrics")]
        allowed = ["GET", "POST", "POST", "GET", "POST", "POST", "GET", "GET", "POST",
                   "GET, POST", "GET", "GET"]
        for (method, path), allow in zip(cases, allowed):
            status, body = self.c.request(method, path, body={})
            self.assertEqual(status, 405, (method, path))
            self.assert_json_error(status, body)
            self.assertEqual(body["error"], "method_not_allowed", (method, path))
            self.assertEqual(self.c.last_headers.get("Allow"), allow, (method, path))
        # Nothing was created by the wrong-method POST on an account path.
        status, body = self.c.get("/v1/accounts/x")
        self.assertEqual(status, 404)

    def test_json_content_type_on_answers(self):
        self.c.account(self.uid("a"))
        for path in ("/v1/accounts/" + self.uid("a"), "/v1/accounts/none", "/nope", "/healthz"):
            self.c.get(path)
            self.assertTrue(self.c.last_headers.get("Content-Type", "").startswith(
                "application/json"), path)

    def test_healthz(self):
        status, body = self.c.get("/healthz")
        self.assertEqual(status, 200)
        self.assertIsInstance(body, dict)

    def test_metrics(self):
        self.c.account(self.uid("w"), min_balance=None)
        self.c.account(self.uid("a"))
        status, r = self.c.transfer(self.uid("t"), self.uid("w"), self.uid("a"), 3)
        self.assertEqual(status, 201, r)
        status, text = self.c.get("/metrics")
        self.assertEqual(status, 200)
        self.assertIsInstance(text, str)
        self.assertTrue(self.c.last_headers.get("Content-Type", "").startswith("text/plain"))
        for name in ("ledgerd_http_requests_total", "ledgerd_http_request_duration_seconds_bucket",
                     "ledgerd_batch_transfers_bucket", "ledgerd_commits_total",
                     "ledgerd_db_errors_total"):
            self.assertRegex(text, r"(?m)^%s(\{[^}]*\})? [0-9.eE+-]+$" % re.escape(name), name)
        commits = re.search(r"(?m)^ledgerd_commits_total(?:\{[^}]*\})? ([0-9.eE+]+)$", text)
        self.assertGreaterEqual(float(commits.group(1)), 1)
        # Every sample line parses as "name{labels} value".
        for line in text.splitlines():
            if line and not line.startswith("#"):
                self.assertRegex(line, r"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? \S+$", line)


class SlowReadTest(HttpTestCase):
    @contextlib.contextmanager
    def accounts_locked(self):
        """Holds ACCESS EXCLUSIVE on ledger.accounts in a psql session; the
        lock is released (COMMIT) by unlock(), or at the latest on exit."""
        with subprocess.Popen(
                ["psql", harness.cluster().conninfo, "-XAtq", "-v", "ON_ERROR_STOP=1"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as locker:
            try:
                locker.stdin.write("SET lock_timeout = '10s'; BEGIN;"
                                   " LOCK TABLE ledger.accounts IN ACCESS EXCLUSIVE MODE;"
                                   " SELECT 'locked';\n")
                locker.stdin.flush()
                self.assertEqual(locker.stdout.readline().strip(), "locked")
                yield locker
            finally:
                if locker.poll() is None:
                    locker.kill()
                    locker.wait()

    def unlock(self, locker):
        locker.stdin.write("COMMIT;\n")
        locker.stdin.close()
        if locker.wait(10) != 0:
            raise AssertionError("psql could not commit")

    def start_reads(self, clients, answers):
        """One GET of the test's account per client, each in its thread."""
        def read(c):
            answers.append(c.get("/v1/accounts/" + self.uid("a")))

        threads = [threading.Thread(target=read, args=(c,)) for c in clients]
        for t in threads:
            t.start()
        return threads

    def wait_for_lock_waiters(self, n):
        deadline = time.time() + 10
        while self.waiting_on_locks() < n:
            self.assertLess(time.time(), deadline, "the reads never reached the lock")
            time.sleep(0.05)

    def waiting_on_locks(self):
        _, out, _ = harness.cluster().psql(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND query LIKE '%ledger.accounts%'")
        return int(out)

    def queued(self):
        text = self.c.get("/metrics")[1]
        return int(re.search(r"(?m)^ledgerd_queued_transfers (\d+)$", text).group(1))

    def raw_get(self, path):
        s = self.connect()
        s.sendall(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path.encode())
        return s

    def answered_now(self, socks, seconds):
        """The sockets that got an answer within seconds: {sock: (status, body)}."""
        import select
        got, deadline = {}, time.time() + seconds
        while time.time() < deadline and len(got) < len(socks):
            ready, _, _ = select.select([s for s in socks if s not in got], [], [], 0.2)
            for s in ready:
                status, _, body = read_response(s)
                got[s] = (status, body)
        return got

    def answered_total(self, route, status):
        text = self.c.get("/metrics")[1]
        m = re.search(r'(?m)^ledgerd_http_requests_total\{route="%s",status="%d"\} (\d+)$'
                      % (re.escape(route), status), text)
        return int(m.group(1)) if m else 0

    def test_the_read_queue_is_bounded(self):
        """Four reads wait in the database (one per reader), 512 wait for a
        reader; any more are answered 503 at once, not queued."""
        a = self.uid("a")
        self.c.account(a)
        path = "/v1/accounts/" + a
        socks = []
        try:
            with self.accounts_locked() as locker:
                socks += [self.raw_get(path) for _ in range(4)]
                self.wait_for_lock_waiters(4)
                socks += [self.raw_get(path) for _ in range(512 + 20)]
                early = self.answered_now(socks, 5)
                self.assertEqual(len(early), 20)
                for status, body in early.values():
                    self.assertEqual(status, 503)
                    self.assertIn("too many reads are waiting", json.loads(body)["message"])
                self.unlock(locker)
            rest = [s for s in socks if s not in early]
            late = self.answered_now(rest, 60)
            self.assertEqual(len(late), 516)
            self.assertEqual({status for status, _ in late.values()}, {200})
        finally:
            for s in socks:
                s.close()

    def test_reads_of_clients_gone_are_not_run(self):
        """A read whose client reset its connection while it waited for a
        reader is dropped, not run."""
        import struct
        a = self.uid("a")
        self.c.account(a)
        path = "/v1/accounts/" + a
        before = self.answered_total("GET /v1/accounts/{id}", 200)
        with self.accounts_locked() as locker:
            held = [self.raw_get(path) for _ in range(4)]
            self.wait_for_lock_waiters(4)
            for _ in range(300):
                s = self.raw_get(path)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
            time.sleep(0.5)
            self.unlock(locker)
        got = self.answered_now(held, 30)
        self.assertEqual({status for status, _ in got.values()}, {200})
        self.assertEqual(len(got), 4)
        for s in held:
            s.close()
        self.assertEqual(self.c.get(path)[0], 200)
        self.assertEqual(self.answered_total("GET /v1/accounts/{id}", 200) - before, 5)

    def test_metrics_show_the_write_queue(self):
        """ledgerd_queued_transfers counts the transfers waiting behind the
        batch in flight (held here by a lock on the accounts)."""
        w = self.uid("w")
        self.c.account(w, min_balance=None)
        payees = [self.uid("p%d" % i) for i in range(6)]
        for p in payees:
            self.c.account(p)
        self.assertEqual(self.queued(), 0)
        self.assertRegex(self.c.get("/metrics")[1], r"(?m)^ledgerd_queued_transfers_max [1-9]\d*$")
        results = []

        def pay(i):
            c = self.ledgerd.client(timeout=60)
            results.append(c.transfer(self.uid("t%d" % i), w, payees[i], 1)[0])
            c.close()

        threads = []
        with self.accounts_locked() as locker:
            threads.append(threading.Thread(target=pay, args=(0,)))
            threads[0].start()
            self.wait_for_lock_waiters(1)  # that batch holds the committer
            for i in range(1, 6):
                threads.append(threading.Thread(target=pay, args=(i,)))
                threads[-1].start()
            deadline = time.time() + 10
            while self.queued() < 5:
                self.assertLess(time.time(), deadline, "the queue never showed 5 transfers")
                time.sleep(0.05)
            self.unlock(locker)
        for t in threads:
            t.join()
        self.assertEqual(results, [201] * 6)
        self.assertEqual(self.queued(), 0)

    def test_a_read_waiting_on_the_database_holds_up_no_other_connection(self):
        """Reads run on reader threads, not on the HTTP threads: while reads
        of accounts wait on a lock held in another session, every other
        open connection is still answered at once."""
        self.c.account(self.uid("a"))
        # Accepted and served before the reads block, so that they are spread
        # over every HTTP thread, including those the blocked reads came in on.
        others = [self.ledgerd.client(timeout=5) for _ in range(16)]
        blocked = [self.ledgerd.client(timeout=60) for _ in range(4)]
        answers, readers = [], []
        try:
            for c in others + blocked:
                self.assertEqual(c.get("/metrics")[0], 200)
            with self.accounts_locked() as locker:
                readers = self.start_reads(blocked, answers)
                self.wait_for_lock_waiters(4)
                for c in others:
                    started = time.time()
                    status, _ = c.get("/metrics")
                    self.assertEqual(status, 200)
                    self.assertLess(time.time() - started, 1.0)
                self.assertEqual(answers, [], "the reads should still wait for the lock")
                self.unlock(locker)
        finally:
            for t in readers:
                t.join(30)
            for c in others + blocked:
                c.close()
        self.assertEqual(len(answers), 4)
        for status, body in answers:
            self.assertEqual(status, 200, body)
            self.assertEqual(body["id"], self.uid("a"))

    def test_reads_still_queued_at_shutdown_are_answered_503_unrun(self):
        """On SIGTERM, the reads the reader threads are running finish; the
        ones still queued behind them are answered 503 at once instead of
        each waiting its turn on a database that may have stalled."""
        ledgerd = harness.Ledgerd(db=harness.cluster().conninfo)
        clients = [ledgerd.client(timeout=60) for _ in range(8)]
        answers, readers = [], []
        try:
            clients[0].account(self.uid("a"))
            with self.accounts_locked() as locker:
                readers = self.start_reads(clients, answers)
                self.wait_for_lock_waiters(4)  # four run, four wait in the queue
                time.sleep(0.3)
                ledgerd.proc.send_signal(signal.SIGTERM)
                time.sleep(1)
                self.unlock(locker)
            self.assertEqual(ledgerd.proc.wait(30), 0)
        finally:
            for t in readers:
                t.join(30)
            for c in clients:
                c.close()
            ledgerd.stop()
        statuses = sorted(status for status, _ in answers)
        self.assertEqual(statuses, [200] * 4 + [503] * 4, answers)
        for status, body in answers:
            if status == 503:
                self.assertEqual(body["error"], "unavailable", body)
            else:
                self.assertEqual(body["id"], self.uid("a"), body)


class RobustnessTest(HttpTestCase):
    def raw_exchange(self, data):
        """Sends raw bytes; returns whatever comes back before close or timeout."""
        out = b""
        with self.connect() as s:
            try:
                s.sendall(data)
                s.settimeout(2)
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    out += chunk
                    if b"\r\n\r\n" in out:
                        break
            except (socket.timeout, ConnectionResetError, BrokenPipeError):
                pass
        return out

    def test_a_request_is_applied_only_if_it_can_be_answered(self):
        """libmicrohttpd builds an answer's head in the memory its request's
        head left: a large head used to be applied and then left without
        an answer. Now a head is applied and answered, refused with a JSON
        431 and not applied, or (in a band just under the size where
        libmicrohttpd refuses it itself) dropped without being applied."""
        w, a = self.uid("w"), self.uid("a")
        self.c.account(w, min_balance=None)
        self.c.account(a)
        cases = [("pad", n) for n in range(6000, 8300, 12)] + [("headers", n)
                                                               for n in range(40, 130)]
        outcomes = {}
        for kind, n in cases:
            tid = self.uid("%s-%d" % (kind, n))
            body = json.dumps({"id": tid, "from": w, "to": a, "amount": 1}).encode()
            extra = (b"X-Pad: " + b"x" * n + b"\r\n" if kind == "pad"
                     else b"".join(b"X-%d: y\r\n" % i for i in range(n)))
            out = self.raw_exchange(b"POST /v1/transfers HTTP/1.1\r\nHost: x\r\n" + extra +
                                    b"Content-Length: %d\r\n\r\n" % len(body) + body)
            status = int(out.split(b" ", 2)[1]) if out.startswith(b"HTTP/1.1 ") else None
            applied = self.c.get("/v1/transfers/" + tid)[0] == 200
            what = "%s %d: %r" % (kind, n, out[:200])
            if applied:
                self.assertEqual(status, 201, what)
            else:
                self.assertIn(status, (None, 431), what)
            outcomes.setdefault(kind, set()).add(status)
            if status == 431 and out.rstrip().endswith(b"}"):
                outcomes[kind].add("json")
        # Each kind went through all of: applied, refused in JSON.
        for kind in ("pad", "headers"):
            self.assertTrue({201, 431, "json"} <= outcomes[kind], (kind, outcomes[kind]))
        self.assertEqual(self.c.get("/healthz")[0], 200)

    def rss_mb(self):
        with open("/proc/%d/status" % self.ledgerd.proc.pid) as f:
            return int(f.read().split("VmRSS:")[1].split()[0]) // 1024

    def test_json_that_takes_too_much_memory_to_read(self):
        """16 MiB of empty objects took jansson about 1.1 GB to read before
        the batch was found too long. Reading is now bounded (384 MiB per
        body): refused with 400, and the memory is given back."""
        flood = b'{"transfers":[' + b"{}," * ((BODY_MAX - 20) // 3) + b"{}]}"
        self.assertLessEqual(len(flood), BODY_MAX)
        status, resp = self.c.post("/v1/transfers/batch", raw=flood)
        self.assert_json_error(status, resp, "invalid_request")
        self.assertEqual(status, 400)
        self.assertIn("too many JSON values", resp["message"])
        if "ASAN_OPTIONS" not in os.environ:  # ASan holds freed memory in quarantine
            self.assertLess(self.rss_mb(), 150)
        # Within the bound: the largest batch, each item with 1.7 KB of
        # one-digit metadata members (about 20 times its text in jansson's values),
        # is read and judged (here: no such accounts).
        meta = {"k%d" % i: i % 10 for i in range(220)}
        items = [{"id": "%s.%d" % (self.uid(), i), "from": "nobody", "to": "no-one",
                  "amount": 1, "metadata": meta} for i in range(8190)]
        body = json.dumps({"transfers": items}, separators=(",", ":")).encode()
        self.assertGreater(len(body), 12 << 20)
        self.assertLessEqual(len(body), BODY_MAX)
        status, resp = self.c.post("/v1/transfers/batch", raw=body)
        self.assertEqual(status, 200, str(resp)[:300])
        self.assertEqual({r["error"] for r in resp["results"]}, {"account_not_found"})
        self.assert_healthy()

    def test_different_content_lengths_are_refused(self):
        """libmicrohttpd goes by the first Content-Length; a proxy may go by
        the last, and the rest of the body would then be read as a request
        of its own (RFC 9112, 6.3). Refused, and the connection closed."""
        for what in ("short first", "long first"):
            id = self.uid(what.replace(" ", "-"))
            body = json.dumps({"id": id, "currency": "USD"}).encode()
            lengths = (3, len(body)) if what == "short first" else (len(body), 3)
            out = self.raw_exchange_all(
                b"POST /v1/accounts HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                b"Content-Length: %d\r\n\r\n" % lengths + body +
                b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertTrue(out.startswith(b"HTTP/1.1 400 "), (what, out))
            self.assertEqual(out.count(b"HTTP/1.1 "), 1, (what, out))
            self.assertIn(b'"invalid_request"', out)
            self.assertEqual(self.c.get("/v1/accounts/" + id)[0], 404, what)
        # The same length twice is one length.
        id = self.uid("same")
        body = json.dumps({"id": id, "currency": "USD"}).encode()
        out = self.raw_exchange_all(b"POST /v1/accounts HTTP/1.1\r\nHost: x\r\nContent-Length: %d"
                                    b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                                    % (len(body), len(body)) + body)
        self.assertTrue(out.startswith(b"HTTP/1.1 201 "), out)

    def test_transfer_codings_other_than_chunked(self):
        # libmicrohttpd frames chunked bodies only: with another coding it
        # waited, unanswered, until its 60 s timeout. Now 501 at once.
        id = self.uid("acct")
        body = json.dumps({"id": id, "currency": "USD"}).encode()
        for coding in (b"gzip", b"gzip, chunked", b"chunked, gzip", b"identity"):
            started = time.time()
            out = self.raw_exchange_all(b"POST /v1/accounts HTTP/1.1\r\nHost: x\r\n"
                                        b"Transfer-Encoding: %s\r\n\r\n" % coding + body, 10)
            self.assertLess(time.time() - started, 5, coding)
            self.assertTrue(out.startswith(b"HTTP/1.1 501 "), (coding, out))
            self.assertIn(b'"invalid_request"', out)
        self.assertEqual(self.c.get("/v1/accounts/" + id)[0], 404)
        chunked = b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
        out = self.raw_exchange_all(b"POST /v1/accounts HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:"
                                    b" Chunked\r\nConnection: close\r\n\r\n" + chunked)
        self.assertTrue(out.startswith(b"HTTP/1.1 201 "), out)

    def raw_exchange_all(self, data, seconds=3):
        """Sends raw bytes; returns everything that comes back until close or
        seconds of silence."""
        out = b""
        with self.connect() as s:
            s.sendall(data)
            s.settimeout(seconds)
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    out += chunk
            except (socket.timeout, ConnectionResetError):
                pass
        return out

    def test_head_is_get_without_a_body(self):
        a = self.uid("a")
        self.c.account(a)
        for path in ("/healthz", "/metrics", "/v1/accounts/" + a, "/v1/accounts/%s/entries" % a,
                     "/v1/accounts/%s/balance" % a):
            out = self.raw_exchange_all(b"HEAD %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                        b"\r\n" % path.encode())
            head, _, body = out.partition(b"\r\n\r\n")
            self.assertTrue(head.startswith(b"HTTP/1.1 200 "), (path, out))
            self.assertEqual(body, b"", path)
        out = self.raw_exchange_all(b"HEAD /v1/accounts/%s.none HTTP/1.1\r\nHost: x\r\n"
                                    b"Connection: close\r\n\r\n" % a.encode())
        self.assertTrue(out.startswith(b"HTTP/1.1 404 "), out)
        out = self.raw_exchange_all(b"HEAD /v1/transfers HTTP/1.1\r\nHost: x\r\n"
                                    b"Connection: close\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 405 "), out)

    def test_garbage_bytes(self):
        for data in (b"\x00\xff\xfe garbage\r\n\r\n", b"GARBAGE\r\n\r\n",
                     b"GET /healthz HTTP/9.9\r\n\r\n", b"\r\n\r\n\r\n",
                     b"POST /v1/transfers HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
                     b"POST /v1/transfers HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
                     bytes(range(256)) * 8):
            out = self.raw_exchange(data)
            if out:
                self.assertTrue(out.startswith(b"HTTP/1."), out[:100])
            self.assert_healthy()

    def test_bad_json_bodies(self):
        w, a = self.uid("w"), self.uid("a")
        self.c.account(w, min_balance=None)
        self.c.account(a)
        good = json.dumps({"id": self.uid("t"), "from": w, "to": a, "amount": 5})
        bodies = [good[:-1], good[:len(good) // 2], "\xff\xfe", b"\xff\xfe\x00\x01",
                  "[" * 100000, "{\"a\":" * 100000, "{" * 1000000, "[" * 5000 + "]" * 5000,
                  good + "x", good + good, "\x00" + good, '"\\ud800"', "\x00"]
        for path in ("/v1/transfers", "/v1/transfers/batch", "/v1/accounts"):
            for body in bodies:
                raw = body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass")
                status, resp = self.c.post(path, raw=raw)
                self.assertEqual(status, 400, (path, raw[:40], resp))
                self.assert_json_error(status, resp, "invalid_request")
        self.assert_healthy()
        status, resp = self.c.get("/v1/transfers/" + self.uid("t"))
        self.assertEqual(status, 404, resp)
        self.assertEqual(self.c.balance(a), 0)

    def test_deep_nesting_in_metadata(self):
        a = self.uid("a")
        nested = '{"id": "%s", "currency": "USD", "metadata": %s}' % (
            a, '{"x":' * 50000 + "1" + "}" * 50000)
        status, resp = self.c.post("/v1/accounts", raw=nested)
        self.assertEqual(status, 400, resp)
        self.assert_json_error(status, resp, "invalid_request")
        self.assert_healthy()

    def test_request_heads_up_to_6_kb_are_served_and_longer_refused(self):
        w, a = self.uid("w"), self.uid("a")
        self.c.account(w, min_balance=None)
        self.c.account(a)
        c = harness.Client(self.ledgerd.port)
        status, resp = c.post("/v1/transfers", {"id": self.uid("t"), "from": w, "to": a,
                                                "amount": 5}, headers={"X-Pad": "p" * 6000})
        self.assertEqual(status, 201, resp)
        c.close()
        # Past the connection's 8 KB pool libmicrohttpd answers by itself.
        head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 9000 + b"\r\n\r\n"
        out = self.raw_exchange(head)
        self.assertRegex(out[:13], rb"^HTTP/1\.1 4(14|31) ", out[:100])
        self.assert_healthy()
        self.assertEqual(self.c.balance(a), 5)

    def test_keep_alive_survives_errors(self):
        c = harness.Client(self.ledgerd.port)
        c.post("/v1/accounts", raw="{")
        first = c.conn
        status, _ = c.get("/v1/accounts/none")
        self.assertEqual(status, 404)
        status, _ = c.get("/healthz")
        self.assertEqual(status, 200)
        self.assertIs(c.conn, first, "the connection was closed after an ordinary error")
        c.close()


class AccessLogTest(unittest.TestCase):
    def test_debug_logs_each_answer(self):
        d = harness.Ledgerd(db=harness.cluster().conninfo, log_level="debug")
        try:
            c = d.client()
            self.assertEqual(c.get("/healthz")[0], 200)
            self.assertEqual(c.post("/v1/transfers", raw="{")[0], 400)
            self.assertEqual(c.get("/v1/accounts/nobody.al")[0], 404)
            c.close()
            log = d.read_log()
            self.assertRegex(log, r"GET /healthz: 200 in [0-9.]+ ms")
            self.assertRegex(log, r"POST /v1/transfers: 400 in [0-9.]+ ms")
            self.assertRegex(log, r"GET /v1/accounts/nobody\.al: 404 in [0-9.]+ ms")
        finally:
            d.stop()
        quiet = harness.Ledgerd(db=harness.cluster().conninfo, log_level="info")
        try:
            self.assertEqual(quiet.client().get("/healthz")[0], 200)
            self.assertNotIn("/healthz: 200", quiet.read_log())
        finally:
            quiet.stop()


class TokenFileFormatTest(unittest.TestCase):
    """A token file that could not be read as written is refused at start."""

    def start(self, text, mode="w"):
        fd, path = tempfile.mkstemp(prefix="ledgerd-tokens-")
        with os.fdopen(fd, mode) as f:
            f.write(text)
        self.addCleanup(os.unlink, path)
        return path

    def test_a_line_too_long_or_with_a_control_character_is_refused(self):
        # A 4,097-byte line used to become two tokens: its first 4,095
        # bytes and the rest (here a single "Z"), each accepted.
        for what, text in (("4097 bytes", "A" * 4096 + "Z\n"),
                           ("100,000 bytes", "tok-ok\n" + "B" * 100000 + "\n"),
                           ("a NUL", "tok\x00x\n"), ("a tab inside", "tok\tx\n"),
                           ("an escape", "tok\x1bx\n")):
            path = self.start(text.encode("latin-1"), "wb")
            p = subprocess.run([harness.LEDGERD, "--db", harness.cluster().conninfo, "--listen",
                                "127.0.0.1:%d" % harness.free_port(), "--token-file", path],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 2, (what, p.stderr))
            self.assertIn("line", p.stderr, what)
            self.assertNotIn("AAAAAAAAAA", p.stderr, what)  # no token in the log

    def test_byte_order_mark_and_crlf(self):
        long = "L" * 4096
        path = self.start("\ufeff# prod tokens\r\ntok-after-bom\r\n" + long + "\r\n",
                          "w")
        d = harness.Ledgerd(db=harness.cluster().conninfo, extra=("--token-file", path))
        try:
            for token, want in (("tok-after-bom", 200), (long, 200), ("# prod tokens", 401),
                                ("\ufeff# prod tokens", 401)):
                c = harness.Client(d.port, None)
                status, _ = c.request("GET", "/v1/accounts/x", headers={
                    "Authorization": ("Bearer " + token).encode("utf-8")})
                self.assertEqual(status, 404 if want == 200 else 401, repr(token[:20]))
                c.close()
        finally:
            d.stop()


class TokenFileTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        harness.cluster().reset()
        cls.token_path = harness.token_file("# tokens for the API tests\n\ntok-alpha-123\n  \n"
                                            "#tok-commented\ntok-beta-456\n")
        cls.ledgerd = harness.Ledgerd(db=harness.cluster().conninfo,
                                      extra=("--token-file", cls.token_path))

    @classmethod
    def tearDownClass(cls):
        cls.ledgerd.stop()
        os.unlink(cls.token_path)

    def client(self, token=None):
        return harness.Client(self.ledgerd.port, token)

    def assert_unauthorized(self, status, body, what, client=None):
        self.assertEqual(status, 401, "%s: %r" % (what, body))
        self.assertEqual(body.get("error"), "unauthorized", what)
        self.assertTrue(body.get("message"), what)
        if client:  # RFC 9110: a 401 names the scheme it wants
            self.assertEqual(client.last_headers.get("WWW-Authenticate"),
                             'Bearer realm="ledgerd"', what)

    def test_v1_needs_a_token(self):
        bad = [("no token", None, None),
               ("wrong token", "tok-gamma-789", None),
               ("prefix of a token", "tok-alpha-12", None),
               ("token plus a char", "tok-alpha-1234", None),
               ("commented token", "tok-commented", None),
               ("comment line", "# tokens for the API tests", None),
               ("empty token", "", {"Authorization": "Bearer "}),
               ("no Bearer scheme", None, {"Authorization": "tok-alpha-123"}),
               ("Basic scheme", None, {"Authorization": "Basic tok-alpha-123"})]
        for what, token, headers in bad:
            c = self.client(token)
            for method, path, body in (("GET", "/v1/accounts/tk.x", None),
                                       ("POST", "/v1/accounts", {"id": "tk.x", "currency": "USD"}),
                                       ("GET", "/v1/accounts/tk.x/entries", None),
                                       ("GET", "/v1/transfers/tk.t", None),
                                       ("POST", "/v1/transfers", {"id": "tk.t", "from": "tk.x",
                                                                  "to": "tk.y", "amount": 1}),
                                       ("GET", "/v1/nope", None)):
                status, resp = c.request(method, path, body=body, headers=headers)
                self.assert_unauthorized(status, resp, "%s %s %s" % (what, method, path), c)
            c.close()
        # Nothing was created by the refused requests.
        status, resp = self.client("tok-alpha-123").get("/v1/accounts/tk.x")
        self.assertEqual(status, 404, resp)
        # Logged at most once every 10 s (not once for each of these 54
        # refusals), with the client's address, never a token.
        log = self.ledgerd.read_log()
        self.assertIn("without a valid bearer token", log)
        self.assertIn("127.0.0.1", log)
        self.assertLess(log.count("without a valid bearer token"), 10, log)
        for token in ("tok-gamma-789", "tok-alpha-12", "tok-alpha-123"):
            self.assertNotIn(token, log)

    def test_every_spelling_of_a_path_needs_a_token(self):
        # Only /healthz and /metrics, spelt exactly, are open; anything the
        # router might read as a /v1 path is refused first.
        c = self.client()
        for method, path, body in (("POST", "//v1/accounts", {"id": "tk.s", "currency": "USD"}),
                                   ("POST", "/%2Fv1/accounts", {"id": "tk.s", "currency": "USD"}),
                                   ("POST", "/v1//accounts", {"id": "tk.s", "currency": "USD"}),
                                   ("GET", "///v1/accounts/tk.s", None),
                                   ("GET", "/", None), ("GET", "/nope", None),
                                   ("GET", "//healthz", None), ("GET", "/metrics/", None)):
            status, resp = c.request(method, path, body=body)
            self.assert_unauthorized(status, resp, "%s %s" % (method, path), c)
        status, resp = self.client("tok-alpha-123").get("/v1/accounts/tk.s")
        self.assertEqual(status, 404, resp)

    def test_no_body_is_read_without_a_token(self):
        with socket.create_connection(("127.0.0.1", self.ledgerd.port), timeout=10) as s:
            s.sendall(b"POST /v1/transfers HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{")
            started = time.time()
            status, _, body = read_response(s, timeout=10)
        self.assertLess(time.time() - started, 5, "the 401 must not wait for the body")
        self.assertEqual(status, 401)
        self.assertEqual(json.loads(body)["error"], "unauthorized")

    def test_the_scheme_is_case_insensitive(self):
        # RFC 9110, 11.1: the scheme is case-insensitive; the token is not.
        for scheme in ("bearer", "BEARER", "Bearer"):
            c = self.client()
            status, resp = c.request("GET", "/v1/accounts/tk.none",
                                     headers={"Authorization": scheme + " tok-alpha-123"})
            self.assertEqual(status, 404, (scheme, resp))
            status, resp = c.request("GET", "/v1/accounts/tk.none",
                                     headers={"Authorization": scheme + " TOK-ALPHA-123"})
            self.assert_unauthorized(status, resp, scheme + " with the token upper-cased")

    def test_whitespace_around_the_token(self):
        # RFC 6750 allows more than one space after the scheme; RFC 9110
        # makes whitespace around a header's value no part of it.
        for value in ("Bearer  tok-alpha-123", "Bearer\ttok-alpha-123", "Bearer tok-alpha-123 ",
                      "Bearer tok-alpha-123\t", "bearer \t tok-alpha-123 \t "):
            c = self.client()
            status, resp = c.request("GET", "/v1/accounts/tk.none",
                                     headers={"Authorization": value})
            self.assertEqual(status, 404, (value, resp))
        for value in ("Bearertok-alpha-123", "Bearer tok-alpha -123", "Bearer tok-alpha-123 x",
                      "Bearer \t "):
            c = self.client()
            status, resp = c.request("GET", "/v1/accounts/tk.none",
                                     headers={"Authorization": value})
            self.assert_unauthorized(status, resp, repr(value))

    def test_either_token_works(self):
        alpha, beta = self.client("tok-alpha-123"), self.client("tok-beta-456")
        status, resp = alpha.post("/v1/accounts", {"id": "tk.w", "currency": "USD",
                                                   "min_balance": None})
        self.assertEqual(status, 201, resp)
        status, resp = beta.post("/v1/accounts", {"id": "tk.a", "currency": "USD"})
        self.assertEqual(status, 201, resp)
        status, resp = beta.transfer("tk.t1", "tk.w", "tk.a", 10)
        self.assertEqual(status, 201, resp)
        status, resp = alpha.get("/v1/transfers/tk.t1")
        self.assertEqual(status, 200, resp)
        status, resp = alpha.get("/v1/accounts/tk.a")
        self.assertEqual((status, resp["balance"]), (200, "10"))
        status, resp = beta.get("/v1/accounts/tk.a/entries")
        self.assertEqual(status, 200, resp)
        self.assertEqual(len(resp["entries"]), 1)

    def test_healthz_and_metrics_are_open(self):
        c = self.client()
        status, body = c.get("/healthz")
        self.assertEqual(status, 200, body)
        status, text = c.get("/metrics")
        self.assertEqual(status, 200)
        self.assertIn("ledgerd_http_requests_total", text)


if __name__ == "__main__":
    unittest.main()
