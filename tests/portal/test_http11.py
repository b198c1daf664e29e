"""portal.serve.http11, the sans-io connection core: bytes and clock readings in, requests and verdicts out."""
from __future__ import annotations

import pytest

from portal.serve.http11 import (
    BAD_REQUEST,
    BODY_TOO_LARGE,
    CLOSE,
    CONTINUE,
    HEAD_TOO_LARGE,
    TIMEOUT,
    ClientCap,
    DateHeader,
    Http11,
    Limits,
    Request,
    State,
)

T0 = 1000.0
LIMITS = Limits(idle_s=5.0, head_s=10.0, body_s=30.0, max_head=1024, max_headers=10, max_body=100)
PROBE = b"GET /generate_204 HTTP/1.1\r\nHost: connectivitycheck.gstatic.com\r\n\r\n"


def treq(path: bytes = b"/generate_204", host: bytes = b"connectivitycheck.gstatic.com", **kw: object) -> Request:
    fields = {"method": "GET", "target": path, "path": path, "query": b"", "version": "1.1",
              "headers": ((b"Host", host),), "body": b"", "keep_alive": True}
    fields.update(kw)
    return Request(**fields)  # type: ignore[arg-type]


def core() -> Http11:
    return Http11(LIMITS, T0)


def test_a_whole_request_comes_out_and_the_connection_is_answering() -> None:
    c = core()
    assert c.feed(PROBE, T0 + 1) == [treq()]
    assert c.state is State.BUSY and c.deadline() is None and c.expire(T0 + 1000) is None


def test_a_request_split_anywhere_comes_out_once_whole() -> None:
    c = core()
    out = [e for i in range(len(PROBE)) for e in c.feed(PROBE[i:i + 1], T0)]
    assert out == [treq()]


def test_a_slowloris_head_is_refused_408_ten_seconds_after_its_first_byte_however_steady_its_trickle() -> None:
    c = core()
    head = b"GET / HTTP/1.1\r\nX-Pad: " + b"p" * 40
    verdicts = []
    for i, byte in enumerate(head):  # a byte every half second: never idle, never done
        now = T0 + 1 + i * 0.5
        assert c.feed(bytes([byte]), now) == []
        verdicts.append(c.expire(now))
    assert verdicts[:20] == [None] * 20 and verdicts[20] == TIMEOUT  # 10 s after the first byte
    c2 = core()
    c2.feed(b"GET / HTTP/1.1\r\n", T0 + 1)
    assert c2.state is State.HEAD and c2.deadline() == T0 + 11
    assert c2.expire(T0 + 10.9) is None
    assert c2.feed(b"X-a: b\r\n", T0 + 10.95) == []
    assert c2.expire(T0 + 11) == TIMEOUT
    assert c2.state is State.DONE and c2.feed(b"\r\n", T0 + 12) == []


def test_a_trickled_body_is_refused_408_after_body_s() -> None:
    c = core()
    c.feed(b"POST /api/x HTTP/1.1\r\nHost: p\r\nContent-Length: 50\r\n\r\nab", T0 + 1)
    assert c.state is State.BODY and c.deadline() == T0 + 31
    assert c.feed(b"c", T0 + 20) == [] and c.expire(T0 + 30.9) is None
    assert c.expire(T0 + 31) == TIMEOUT


def test_an_idle_connection_is_closed_without_a_word_and_a_kept_alive_one_after_its_answer() -> None:
    c = core()
    assert c.expire(T0 + 4.9) is None and c.expire(T0 + 5) == CLOSE
    c = core()
    c.feed(PROBE, T0 + 1)
    assert c.expire(T0 + 100) is None  # answering: the server decides
    c.answered(T0 + 100)
    assert c.state is State.IDLE and c.deadline() == T0 + 105 and c.expire(T0 + 105) == CLOSE


def test_pipelined_requests_come_out_in_order_and_a_begun_one_gets_its_full_time_after_the_answers() -> None:
    c = core()
    assert c.feed(PROBE + PROBE + b"GET /x HTTP/1.1\r\n", T0) == [treq(), treq()]
    c.answered(T0 + 50)
    assert c.state is State.BUSY  # one still waits for its answer
    c.answered(T0 + 60)
    assert c.state is State.HEAD and c.deadline() == T0 + 70


@pytest.mark.parametrize(("data", "refusal"), [
    (b"GARBAGE\r\n\r\n", BAD_REQUEST),
    (b"GET / HTTP/1.1\r\nHost: x\r\n  folded\r\n\r\n", BAD_REQUEST),  # obs-fold
    (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", BAD_REQUEST),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", BAD_REQUEST),
    (b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\n\r\n", HEAD_TOO_LARGE),
    (b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(11)) + b"\r\n", HEAD_TOO_LARGE),
    # refused at the head, before the client sends the body
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n", BODY_TOO_LARGE),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n" + b"x" * 101 + b"\r\n",
     BODY_TOO_LARGE),
])
def test_bad_requests_get_one_refusal_and_nothing_more_is_read(data: bytes, refusal: object) -> None:
    c = core()
    assert c.feed(data, T0) == [refusal]
    assert c.state is State.DONE and c.feed(PROBE, T0) == [] and c.expire(T0 + 1000) is None


def test_a_body_comes_whole_whether_sized_or_chunked_and_the_connection_goes_on() -> None:
    c = core()
    sized = b"POST /api/x?a=1 HTTP/1.1\r\nHost: p\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
    chunked = b"POST /b HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    a, b = c.feed(sized + b"hello world" + chunked, T0)
    assert isinstance(a, Request) and isinstance(b, Request)
    assert (a.method, a.path, a.query, a.body, a.header(b"content-type")) == (
        "POST", b"/api/x", b"a=1", b"hello world", b"application/json")
    assert (b.body, b.keep_alive) == (b"hello world", True)


def test_expect_100_continue_is_signalled_once_the_head_is_accepted() -> None:
    c = core()
    out = c.feed(b"POST /x HTTP/1.1\r\nHost: p\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n", T0)
    assert out == [CONTINUE]
    assert c.feed(b"ok", T0) == [treq(b"/x", b"p", method="POST", body=b"ok", headers=(
        (b"Host", b"p"), (b"Expect", b"100-continue"), (b"Content-Length", b"2")))]


def test_http_1_0_connection_close_and_upgrades_end_reading_after_their_request() -> None:
    c = core()
    [r] = c.feed(b"GET / HTTP/1.0\r\n\r\n" + PROBE, T0)
    assert isinstance(r, Request) and (r.version, r.keep_alive) == ("1.0", False) and c.state is State.DONE
    c = core()
    [r] = c.feed(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" + PROBE, T0)
    assert isinstance(r, Request) and not r.keep_alive and c.state is State.DONE
    c = core()
    [r] = c.feed(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", T0)
    assert isinstance(r, Request) and r.upgrade and not r.keep_alive and c.state is State.DONE


def test_absolute_form_targets_keep_their_path_and_query() -> None:
    c = core()
    [r] = c.feed(b"GET http://evil.example/a%20b?c=d HTTP/1.1\r\nHost: evil.example\r\n\r\n", T0)
    assert isinstance(r, Request) and (r.target, r.path, r.query) == (
        b"http://evil.example/a%20b?c=d", b"/a%20b", b"c=d")


def test_a_client_holds_at_most_its_cap_of_connections_and_gets_them_back_as_they_close() -> None:
    cap = ClientCap(2)
    assert [cap.admit("10.0.0.5") for _ in range(3)] == [True, True, False]
    assert cap.admit("10.0.0.6") and cap.refused == 1
    cap.leave("10.0.0.5")
    assert cap.admit("10.0.0.5") and not cap.admit("10.0.0.5")
    for _ in range(2):
        cap.leave("10.0.0.5")
    cap.leave("10.0.0.6")
    assert cap.open == {}


def test_the_date_line_is_built_once_a_second() -> None:
    date = DateHeader()
    first = date.line(1_700_000_000.2)
    assert first == b"Date: Tue, 14 Nov 2023 22:13:20 GMT\r\n"
    assert date.line(1_700_000_000.9) is first and date.line(1_700_000_001.0) != first
