"""gort.http's connection loop over an in-memory connection: framing,
keep-alive, pipelining, bodies, 100-continue, HEAD and the bad-input cases."""

from __future__ import annotations

import logging

import pytest

import gort.http as http
from gort.http import Header
from httpfake import responses, serve

GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def hello(w: http.ResponseWriter, r: http.Request) -> None:
    w.header()["Content-Type"] = "text/plain"
    w.write(b"hello")


def echo(w: http.ResponseWriter, r: http.Request) -> None:
    data = r.body.read()
    w.header()["X-Len"] = str(len(data))
    w.header()["X-CL"] = str(r.content_length)
    w.write(data)


# Header


def test_header_is_case_insensitive_multi_dict() -> None:
    h = Header()
    h["content-type"] = "text/plain"
    h.add("X-FOO", "1")
    h.add("x-foo", "2")
    assert h["Content-Type"] == "text/plain"
    assert h.get("CONTENT-TYPE") == "text/plain"
    assert h.get_all("X-Foo") == ["1", "2"]
    assert list(h) == ["Content-Type", "X-Foo"]
    assert "x-foo" in h and "missing" not in h
    h["X-Foo"] = "3"
    assert h.get_all("x-foo") == ["3"]
    del h["X-FOO"]
    assert h.get("x-foo") is None and h.get_all("x-foo") == []
    with pytest.raises(KeyError):
        h["nope"]
    h.delete("nope")  # Go's Del: absent is fine
    assert http.canonical_header_key("x-api-key") == "X-Api-Key"
    assert http.canonical_header_key("bad key") == "bad key"  # not a token: unchanged, as Go


def test_request_header_canonical_and_repeated() -> None:
    seen = {}

    def h(w: http.ResponseWriter, r: http.Request) -> None:
        seen["v"] = r.header.get_all("x-multi")
        seen["ua"] = r.header["user-agent"]
        seen["host"] = r.host

    serve(h, b"GET / HTTP/1.1\r\nhost: ex.org\r\nx-MULTI: a\r\nX-Multi: b\r\nUser-Agent: t\r\n\r\n")
    assert seen == {"v": ["a", "b"], "ua": "t", "host": "ex.org"}


# Responses: framing as Go's ResponseWriter


def test_small_response_gets_content_length_date_and_type() -> None:
    conn = serve(lambda w, r: w.write(b"<html><body>hi</body></html>"), GET)
    [(code, hdr, body)] = responses(bytes(conn.out))
    assert code == 200 and body == b"<html><body>hi</body></html>"
    assert hdr["content-length"] == str(len(body))
    assert hdr["content-type"] == "text/html; charset=utf-8"  # sniffed, as Go
    assert hdr["date"].endswith("GMT")
    assert conn.writes == 1  # header and body in one write


def test_large_response_is_chunked() -> None:
    payload = bytes(range(256)) * 40  # 10 KiB, past the 2048-byte buffer

    def h(w: http.ResponseWriter, r: http.Request) -> None:
        for i in range(0, len(payload), 1000):
            w.write(payload[i : i + 1000])

    conn = serve(h, GET)
    assert b"Transfer-Encoding: chunked\r\n" in conn.out
    [(code, hdr, body)] = responses(bytes(conn.out))
    assert code == 200 and body == payload and "content-length" not in hdr


def test_declared_content_length_is_kept_and_enforced() -> None:
    errors = []

    def h(w: http.ResponseWriter, r: http.Request) -> None:
        w.header()["Content-Length"] = "5000"
        w.write(b"x" * 5000)
        try:
            w.write(b"y")
        except http.ErrContentLength as e:
            errors.append(str(e))

    conn = serve(h, GET)
    [(_, hdr, body)] = responses(bytes(conn.out))
    assert hdr["content-length"] == "5000" and body == b"x" * 5000
    assert errors == ["http: wrote more than the declared Content-Length"]


def test_short_body_for_declared_length_closes_connection() -> None:
    def h(w: http.ResponseWriter, r: http.Request) -> None:
        w.header()["Content-Length"] = "10"
        w.write(b"abc")

    conn = serve(h, GET + GET)
    assert conn.out.count(b"HTTP/1.1 200") == 1  # the second request is not served
    assert conn.closed


def test_status_without_body() -> None:
    def h(w: http.ResponseWriter, r: http.Request) -> None:
        w.write_header(204)
        with pytest.raises(http.ErrBodyNotAllowed):
            w.write(b"x")

    conn = serve(h, GET)
    assert conn.out.startswith(b"HTTP/1.1 204 No Content\r\n")
    assert b"Content-Length" not in conn.out and b"chunked" not in conn.out


def test_header_changes_after_write_header_are_not_sent() -> None:
    def h(w: http.ResponseWriter, r: http.Request) -> None:
        w.header()["X-A"] = "1"
        w.write_header(201)
        w.header()["X-B"] = "2"
        w.write_header(500)  # superfluous: logged, ignored
        w.write(b"ok")

    conn = serve(h, GET)
    [(code, hdr, _)] = responses(bytes(conn.out))
    assert code == 201 and hdr["x-a"] == "1" and "x-b" not in hdr


def test_header_values_cannot_inject_lines() -> None:
    def h(w: http.ResponseWriter, r: http.Request) -> None:
        w.header()["X-A"] = "a\r\nSet-Cookie: evil"
        w.write(b"ok")

    conn = serve(h, GET)
    [(_, hdr, _)] = responses(bytes(conn.out))
    assert "set-cookie" not in hdr and hdr["x-a"] == "a  Set-Cookie: evil"


def test_head_has_length_and_no_body() -> None:
    conn = serve(hello, b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n" + GET)
    rs = responses(bytes(conn.out), methods=["HEAD", "GET"])
    assert [(c, h["content-length"], b) for c, h, b in rs] == [
        (200, "5", b""),
        (200, "5", b"hello"),
    ]


def test_flush_sends_header_and_chunks() -> None:
    def h(w: http.ResponseWriter, r: http.Request) -> None:
        w.write(b"a")
        w.flush()
        w.write(b"b")

    conn = serve(h, GET)
    assert conn.writes >= 2
    [(_, hdr, body)] = responses(bytes(conn.out))
    assert hdr["transfer-encoding"] == "chunked" and body == b"ab"


def test_informational_response_then_final() -> None:
    def h(w: http.ResponseWriter, r: http.Request) -> None:
        w.header()["Link"] = "</a.css>; rel=preload"
        w.write_header(103)
        w.write(b"done")

    conn = serve(h, GET)
    assert conn.out.startswith(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
    assert b"HTTP/1.1 200 OK" in conn.out


# Keep-alive, pipelining, Connection: close, HTTP/1.0


def test_pipelined_requests_answered_in_order_on_one_connection() -> None:
    def h(w: http.ResponseWriter, r: http.Request) -> None:
        w.write(r.url.path.encode())

    reqs = b"".join(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(5))
    conn = serve(h, reqs[:7], reqs[7:50], reqs[50:])  # split anywhere
    assert [b for _, _, b in responses(bytes(conn.out))] == [b"/%d" % i for i in range(5)]


def test_connection_close_request() -> None:
    conn = serve(hello, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" + GET)
    [(_, hdr, _)] = responses(bytes(conn.out))
    assert hdr["connection"] == "close" and conn.closed


def test_handler_connection_close_header_ends_connection() -> None:
    def h(w: http.ResponseWriter, r: http.Request) -> None:
        w.header()["Connection"] = "close"
        w.write(b"bye")

    conn = serve(h, GET + GET)
    assert len(responses(bytes(conn.out))) == 1


def test_http10_closes_unless_keep_alive() -> None:
    conn = serve(hello, b"GET / HTTP/1.0\r\n\r\n" + GET)
    assert conn.out.startswith(b"HTTP/1.0 200 OK") and conn.out.count(b"HTTP/") == 1
    conn = serve(hello, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + GET)
    assert b"Connection: keep-alive\r\n" in conn.out and conn.out.count(b"200 OK") == 2


def test_http10_stream_is_close_delimited() -> None:
    def h(w: http.ResponseWriter, r: http.Request) -> None:
        w.write(b"x" * 3000)
        w.write(b"y")

    conn = serve(h, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert b"chunked" not in conn.out and b"Content-Length" not in conn.out
    assert conn.out.endswith(b"x" * 3000 + b"y")


# Request bodies


def test_content_length_body() -> None:
    conn = serve(echo, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
    [(_, hdr, body)] = responses(bytes(conn.out))
    assert body == b"hello" and hdr["x-cl"] == "5"


def test_chunked_body_is_read_to_its_end() -> None:
    req = (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
    )
    conn = serve(echo, req[:60], req[60:70], req[70:])
    [(_, hdr, body)] = responses(bytes(conn.out))
    assert body == b"abcdefg" and hdr["x-cl"] == "-1"  # unknown length, as Go's -1


def test_body_streams_before_it_has_all_arrived() -> None:
    seen = []

    def h(w: http.ResponseWriter, r: http.Request) -> None:
        seen.append(r.body.read(100))
        seen.append(len(conn_ref[0].chunks))  # what the client has not sent yet
        seen.append(r.body.read())

    from httpfake import FakeConn

    conn_ref: list[FakeConn] = []
    import gort.http.server as srvmod

    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n"
    fc = FakeConn([head + b"abc", b"def", b"ghi"])
    conn_ref.append(fc)
    srv = http.Server(handler=h)
    srvmod._Conn(srv, fc).serve()
    assert seen == [b"abc", 2, b"defghi"]


def test_body_lines_and_readinto() -> None:
    out = []

    def h(w: http.ResponseWriter, r: http.Request) -> None:
        out.append(r.body.readline())
        buf = bytearray(3)
        out.append(r.body.readinto(buf))
        out.append(bytes(buf))
        out.extend(r.body)

    serve(h, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\nab\ncdef\ngh\n")
    assert out == [b"ab\n", 3, b"cde", b"f\n", b"gh\n"]


def test_truncated_body_raises_unexpected_eof() -> None:
    errs = []

    def h(w: http.ResponseWriter, r: http.Request) -> None:
        try:
            r.body.read()
        except EOFError as e:
            errs.append(str(e))

    serve(h, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
    assert errs == ["unexpected EOF"]


def test_unread_small_body_is_discarded_and_connection_reused() -> None:
    body = b"z" * 1000
    req = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + body
    conn = serve(hello, req + GET)
    assert [c for c, _, _ in responses(bytes(conn.out))] == [200, 200]


def test_unread_huge_body_closes_connection() -> None:
    n = 1 << 20
    req = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % n
    conn = serve(hello, req, *([b"z" * 65536] * 16), GET)
    [(_, hdr, _)] = responses(bytes(conn.out))
    assert hdr["connection"] == "close" and conn.closed


def test_expect_continue_sent_on_first_read() -> None:
    req = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
    conn = serve(echo, req, b"abc")
    assert conn.out.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")
    [(_, _, body)] = responses(bytes(conn.out))
    assert body == b"abc"


def test_expect_continue_not_sent_when_body_unread_and_connection_closed() -> None:
    req = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
    conn = serve(hello, req)
    assert b"100 Continue" not in conn.out
    assert b"Connection: close\r\n" in conn.out and conn.closed


# Bad input


@pytest.mark.parametrize(
    "req",
    [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",  # HTTP/1.1 without Host
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
    ids=["request-line", "header", "no-host", "two-hosts", "cl-differ", "cl-bad", "bad-chunk"],
)
def test_malformed_is_400_and_closed(req: bytes) -> None:
    calls = []

    def h(w: http.ResponseWriter, r: http.Request) -> None:
        calls.append(1)
        r.body.read()

    conn = serve(h, req, GET)
    assert conn.out.startswith(b"HTTP/1.1 400 Bad Request"), conn.out
    assert b"Connection: close\r\n" in conn.out and conn.closed
    assert conn.out.count(b"HTTP/1.1 ") == 1  # nothing after it is served


def test_content_length_with_transfer_encoding_is_refused() -> None:
    # RFC 9112 6.3: a smuggling vector; refused, and the connection closed
    calls = []
    req = (
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    conn = serve(lambda w, r: calls.append(r.url.path), req)
    assert calls == [] and conn.out.startswith(b"HTTP/1.1 400 Bad Request") and conn.closed


def test_requests_before_a_bad_one_are_served() -> None:
    conn = serve(hello, GET + GET + b"BROKEN\r\n\r\n")
    assert [c for c, _, _ in responses(bytes(conn.out))] == [200, 200, 400]


def test_oversized_header_is_431() -> None:
    big = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 10000 + b"\r\n\r\n"
    conn = serve(hello, big, max_header_bytes=1024)
    assert conn.out.startswith(b"HTTP/1.1 431 Request Header Fields Too Large") and conn.closed
    # trickled in small reads, without the header ever completing
    chunks = [b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: "] + [b"a" * 512] * 100
    conn = serve(hello, *chunks, max_header_bytes=1024)
    assert conn.out.startswith(b"HTTP/1.1 431") and conn.closed


def test_header_under_the_limit_is_fine() -> None:
    req = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 3000 + b"\r\n\r\n"
    conn = serve(hello, req, max_header_bytes=1024)  # Go allows 4096 bytes of slack
    assert conn.out.startswith(b"HTTP/1.1 200")


def test_eof_mid_request_closes_silently() -> None:
    conn = serve(hello, b"GET / HTTP/1.1\r\nHo")
    assert conn.out == b"" and conn.closed


# Handler errors


def test_handler_exception_is_500_logged_and_closes(caplog: pytest.LogCaptureFixture) -> None:
    def h(w: http.ResponseWriter, r: http.Request) -> None:
        w.header()["X-Half"] = "1"
        raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, logger="gort.http"):
        conn = serve(h, GET + GET)
    [(code, hdr, body)] = responses(bytes(conn.out))
    assert code == 500 and body == b"Internal Server Error\n" and "x-half" not in hdr
    assert conn.closed
    [rec] = caplog.records
    assert "http: panic serving 127.0.0.1:5555: boom" in rec.getMessage()
    assert rec.exc_info is not None and "RuntimeError" in caplog.text


def test_handler_exception_after_header_sent_only_closes(caplog: pytest.LogCaptureFixture) -> None:
    def h(w: http.ResponseWriter, r: http.Request) -> None:
        w.write(b"x" * 5000)
        w.flush()
        raise RuntimeError("late")

    with caplog.at_level(logging.ERROR, logger="gort.http"):
        conn = serve(h, GET + GET)
    assert conn.out.startswith(b"HTTP/1.1 200 OK") and b"500" not in conn.out
    assert not conn.out.endswith(b"0\r\n\r\n")  # the chunked body is left unterminated
    assert conn.closed and "late" in caplog.text


def test_handler_exception_before_anything_reached_the_wire_is_500() -> None:
    def h(w: http.ResponseWriter, r: http.Request) -> None:
        w.write(b"x" * 5000)  # framed as a chunk, still held back
        raise RuntimeError("late but unsent")

    conn = serve(h, GET)
    [(code, _, _)] = responses(bytes(conn.out))
    assert code == 500 and conn.closed


def test_abort_handler_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    def h(w: http.ResponseWriter, r: http.Request) -> None:
        raise http.ErrAbortHandler()

    with caplog.at_level(logging.ERROR, logger="gort.http"):
        conn = serve(h, GET)
    assert conn.closed and not caplog.records


def test_handler_object_with_serve_http() -> None:
    class H:
        def serve_http(self, w: http.ResponseWriter, r: http.Request) -> None:
            w.write(b"obj")

    conn = serve(H(), GET)
    assert responses(bytes(conn.out))[0][2] == b"obj"
