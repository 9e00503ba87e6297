"""HTTP hardening of bok-gateway (issue 12): numeric query parameters are
range-checked without overflow, slow clients cannot hold connections, the
spec and the gateway agree on enums and lengths."""
import re
import socket
import time

import bok_e2e as e

UNKNOWN = "00000000-0000-4000-8000-000000000000"


def test_numeric_query_parameters_are_range_checked():
    """Every numeric query parameter: 400 naming it outside its documented
    range (docs/openapi.yaml minimum/maximum), never an overflow; the edges
    of the range reach the job service (404 for an unknown job)."""
    with e.Stack(workers=0) as s:
        rej = "/jobs/%s/rejected?" % UNKNOWN
        bad = [rej + "after_row=9223372036854775808",   # INT64_MAX + 1: aborted the ASan build
               rej + "after_row=18446744073709551616",
               rej + "after_row=99999999999999999999999",
               rej + "after_row=-1", rej + "after_row=", rej + "after_row=1.5", rej + "after_row=%2B1",
               rej + "limit=0", rej + "limit=100001", rej + "limit=9223372036854775808", rej + "limit=",
               "/jobs?limit=100001", "/jobs?limit=-1", "/jobs?limit=9223372036854775808", "/jobs?limit=1e3"]
        for path in bad:
            key = path.split("?")[1].split("=")[0]
            st, resp = s.http("GET", path)
            e.check(st == 400 and isinstance(resp, dict) and resp.get("code") == "INVALID_ARGUMENT"
                    and resp["error"].startswith(key + ": expected an integer "), "%s: %s %s" % (path, st, resp))
        for path in [rej + "after_row=9223372036854775807", rej + "after_row=0", rej + "limit=1",
                     rej + "limit=100000&after_row=00000000000000000000000000001"]:
            st, resp = s.http("GET", path)
            e.check(st == 404 and resp == {"error": "not found"}, "%s: %s %s" % (path, st, resp))
        for path in ["/jobs?limit=0", "/jobs?limit=100000"]:
            st, resp = s.http("GET", path)
            e.check(st == 200 and resp == [], "%s: %s %s" % (path, st, resp))
        e.check(s["gateway"].alive(), "the gateway is still up")


# ---- slow clients ------------------------------------------------------------------

def closed_after(sock, limit):
    """Seconds until the server closes `sock` (EOF or reset), None if it is
    still open after `limit` seconds. Returns (seconds, bytes received)."""
    t0 = time.time()
    data = b""
    sock.settimeout(0.2)
    while time.time() - t0 < limit:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return time.time() - t0, data
        if not chunk:
            return time.time() - t0, data
        data += chunk
    return None, data


def metric(s, name):
    st, text = s.http("GET", "/metrics")
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def test_partial_request_head_is_closed_after_header_timeout():
    """Half a request line (and a head without its empty line) is closed
    after header_timeout_ms, not request_timeout_ms; a complete head whose
    body is slow is not cut at the header timeout; an idle keep-alive
    connection is closed after it too; normal requests are untouched."""
    with e.Stack(model=False, job=False, workers=0,
                 overrides={"gateway": {"header_timeout_ms": 1000, "keepalive_timeout_ms": 2000,
                                        "request_timeout_ms": 60000}}) as s:
        port = s.http_port
        for partial in (b"GET /mod", b"GET /models HTTP/1.1\r\nHost: x\r\nX-Slow: 1"):
            c = socket.create_connection(("127.0.0.1", port), timeout=10)
            c.sendall(partial)
            t, data = closed_after(c, 8)
            c.close()
            e.check(t is not None and 0.7 <= t <= 4, "%r: closed after %s s (header timeout 1 s)" % (partial, t))
            e.check(data == b"", "%r: closed without an answer: %r" % (partial, data[:80]))
        # dribbling the head byte by byte does not extend the timeout
        c = socket.create_connection(("127.0.0.1", port), timeout=10)
        t0 = time.time()
        closed = None
        for ch in b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Pad: " + b"a" * 100:
            try:
                c.sendall(bytes([ch]))
            except OSError:
                closed = time.time() - t0
                break
            time.sleep(0.1)
        if closed is None:
            t, _ = closed_after(c, 8)
            closed = None if t is None else time.time() - t0
        c.close()
        e.check(closed is not None and closed <= 4, "a dribbled head is closed after ~1 s: %s" % closed)
        # a complete head with a slow body: left to request_timeout_ms
        body = b'{"name": "x", "schema": {}}'
        c = socket.create_connection(("127.0.0.1", port), timeout=10)
        c.sendall(b"POST /models HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body) + body[:5])
        time.sleep(2.5)
        c.sendall(body[5:])
        t, data = closed_after(c, 8)
        c.close()
        e.check(data.startswith(b"HTTP/1.1 400") or data.startswith(b"HTTP/1.1 503"),
                "slow body still answered: %r" % data[:80])
        # keep-alive: the next request head is due within the header timeout too
        c = socket.create_connection(("127.0.0.1", port), timeout=10)
        c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        t, data = closed_after(c, 8)
        c.close()
        e.check(data.startswith(b"HTTP/1.1 200") and t is not None and 1.5 <= t <= 5,
                "idle keep-alive connection closed after ~2 s (keepalive_timeout_ms): %s %r" % (t, data[:40]))
        st, body = s.http("GET", "/healthz")
        e.check(st == 200, "healthz: %s" % st)
        n = metric(s, "bok_gateway_header_timeouts_total")
        e.check(n is not None and n >= 4, "bok_gateway_header_timeouts_total: %s" % n)


def ask(c, path=b"/healthz"):
    """One keep-alive GET on socket c; the answer's status line."""
    c.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    c.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = c.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    n = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1)) if b"ontent-" in head else 0
    while len(rest) < n:
        chunk = c.recv(65536)
        if not chunk:
            break
        rest += chunk
    return head.split(b"\r\n")[0]


def test_idle_connections_live_until_the_keepalive_timeout():
    """A connection that sends nothing is not a slow client: a browser opens
    one ahead and uses it up to 10 s later, and reuses one for minutes. With
    header_timeout_ms 1 s and keepalive_timeout_ms 4 s: a request sent 1.6 s
    after connecting, and one 2.5 s after the previous answer, are answered
    (before: closed at 1 s; Chrome's upload failed with "the gateway closed
    the connection" under load); an idle connection is closed after ~4 s; a
    head begun after an idle second is still cut about a second later."""
    with e.Stack(model=False, job=False, workers=0,
                 overrides={"gateway": {"header_timeout_ms": 1000, "keepalive_timeout_ms": 4000}}) as s:
        port = s.http_port
        c = socket.create_connection(("127.0.0.1", port), timeout=10)
        time.sleep(1.6)
        status = ask(c)
        e.check(status.startswith(b"HTTP/1.1 200"), "first request after 1.6 s idle: %r" % status)
        time.sleep(2.5)
        status = ask(c)
        e.check(status.startswith(b"HTTP/1.1 200"), "request after 2.5 s keep-alive idle: %r" % status)
        t, data = closed_after(c, 10)
        c.close()
        e.check(t is not None and 3 <= t <= 7 and data == b"", "idle connection closed after ~4 s: %s %r" % (t, data[:40]))
        c = socket.create_connection(("127.0.0.1", port), timeout=10)
        time.sleep(1.2)
        c.sendall(b"GET /hea")
        t, data = closed_after(c, 8)
        c.close()
        e.check(t is not None and t <= 2.5 and data == b"", "a head begun after an idle second: closed %s s later" % t)


def test_connections_per_ip_are_capped():
    """max_connections_per_ip connections from 127.0.0.1 are served; one more
    is answered 503 and closed; once one is released a request works."""
    cap = 6
    with e.Stack(model=False, job=False, workers=0,
                 overrides={"gateway": {"max_connections_per_ip": cap, "header_timeout_ms": 30000}}) as s:
        port = s.http_port
        held = []
        for _ in range(cap):
            held.append(socket.create_connection(("127.0.0.1", port), timeout=10))
            time.sleep(0.05)
        time.sleep(0.5)  # every loop accepted them
        extra = socket.create_connection(("127.0.0.1", port), timeout=10)
        t, data = closed_after(extra, 5)
        extra.close()
        e.check(t is not None, "connection %d is closed" % (cap + 1))
        e.check(data == b"" or (data.startswith(b"HTTP/1.1 503") and b"too many connections" in data),
                "connection %d: %r" % (cap + 1, data[:200]))
        # the held connections still work
        held[0].sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        held[0].settimeout(5)
        e.check(held[0].recv(65536).startswith(b"HTTP/1.1 200"), "a held connection is served")
        held.pop().close()
        time.sleep(0.5)
        st, body = s.http("GET", "/healthz")
        e.check(st == 200, "after releasing one: %s %s" % (st, body))
        n = metric(s, "bok_gateway_connections_refused_total")
        e.check(n is not None and n >= 1, "bok_gateway_connections_refused_total: %s" % n)
        for c in held:
            c.close()
        time.sleep(0.5)
        # all released: the cap counts open connections, not past ones
        socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(cap - 2)]
        time.sleep(0.3)
        for st, _ in [s.http("GET", "/healthz") for _ in range(5)]:
            e.check(st == 200, "healthz under the cap: %s" % st)
        for c in socks:
            c.close()


# ---- the spec and the gateway agree -----------------------------------------------------

def test_spec_enums_and_lengths_match_the_gateway():
    """Issue 12 (schemathesis): an empty or mixed-case `state=` is 400 (the
    enum lists upper and lower case); `schema: {}` is 400 and the spec says
    so (SPEC 5: type object with properties); the separator follows the
    spec's Separator pattern, in the form and in POST /schema's query."""
    spec = e.openapi()
    sep = spec._resolve({"$ref": "#/components/schemas/Separator"})
    e.check(sep["maxLength"] == 3 and "pattern" in sep, "Separator in the spec: %s" % sep)
    ms = spec._resolve({"$ref": "#/components/schemas/ModelSchema"})
    e.check(ms["required"] == ["type", "properties"], "ModelSchema requires type and properties: %s" % ms)
    with e.Stack(workers=0) as s:
        for q in ["state=", "state=Running", "state=BOGUS", "state=%00", "state=RUNNING%00"]:
            st, resp = s.http("GET", "/jobs?" + q)
            e.check(st == 400 and resp["error"].startswith("state: expected"), "%s: %s %s" % (q, st, resp))
        for q in ["", "?state=running", "?state=PARTIAL_SUCCESS", "?state=partial_success&limit=3"]:
            st, resp = s.http("GET", "/jobs" + q)
            e.check(st == 200 and resp == [], "%s: %s %s" % (q, st, resp))
        for body in [{"name": "m", "schema": {}}, {"name": "m", "schema": {"type": "object"}},
                     {"name": "m", "schema": {"type": "object", "properties": {}}},
                     {"name": "m", "schema": {"properties": {"a": {"type": "string"}}}},
                     {"name": "   ", "schema": {"type": "object", "properties": {"a": {"type": "string"}}}}]:
            st, resp = s.http("POST", "/models", body)
            e.check(st == 400 and resp.get("code") == "INVALID_ARGUMENT", "%s: %s %s" % (body, st, resp))
        st, m = s.http("POST", "/models", {"name": "m", "schema": {
            "type": "object", "properties": {"id": {"type": "string"}, "v": {"type": "integer"}}}})
        e.check(st == 201, "model: %s %s" % (st, m))
        sample = "id;v\na;1\n"
        for v in ["%22", "%0A", "%0D", "%00", "%01", "%7F", "%C3%A9", "%3B%3B", "TAB", "%5Cn"]:
            st, resp = s.http("POST", "/schema?separator=" + v, body=sample, headers={"Content-Type": "text/csv"})
            e.check(st == 400 and resp["error"].startswith("separator: expected"), "separator=%s: %s %s" % (v, st, resp))
        for v, cols in [(";", ["id", "v"]), ("%3B", ["id", "v"]), ("", ["id;v"]), ("tab", ["id;v"]),
                        ("%5Ct", ["id;v"]), ("%09", ["id;v"])]:
            st, resp = s.http("POST", "/schema?separator=" + v, body=sample, headers={"Content-Type": "text/csv"})
            e.check(st == 200 and sorted(resp["properties"]) == cols, "separator=%s: %s %s" % (v, st, resp))
        for v in ["\x00", "\"", "\n", ";;", "\u00e9", "\x7f", "ab"]:
            body, ct = e.multipart({"model_id": m["model_id"], "separator": v}, {"file": ("a.csv", "id,v\na,1\n", "text/csv")})
            st, resp = s.http("POST", "/jobs", body=body, headers={"Content-Type": ct})
            e.check(st == 400 and resp["error"].startswith("separator: expected"), "form separator %r: %s %s" % (v, st, resp))
        st, lst = s.http("GET", "/jobs")
        e.check(st == 200 and lst == [], "no job left behind by a refused separator: %s" % lst)


if __name__ == "__main__":
    e.run_tests(globals())
