"""Channels: unbuffered handoff, buffered FIFO, len/cap, close, nil channel."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

import gort
from conftest import Spread


def _spin(times: int = 200) -> None:
    """Give every other goroutine plenty of chances to run."""
    for _ in range(times):
        gort.gosched()


# --- construction -------------------------------------------------------------------------


def test_default_channel_is_unbuffered() -> None:
    ch = gort.chan()
    assert ch.cap == 0
    assert len(ch) == 0


@pytest.mark.parametrize("cap", [0, 1, 5, 1000])
def test_cap_is_reported(cap: int) -> None:
    ch = gort.chan(cap)
    assert ch.cap == cap
    assert len(ch) == 0
    assert gort.chan(cap=cap).cap == cap


@pytest.mark.parametrize("cap", [-1, -100])
def test_negative_cap_is_value_error(cap: int) -> None:
    with pytest.raises(ValueError):
        gort.chan(cap)


def test_nilchan_len_and_cap() -> None:
    assert len(gort.nilchan) == 0
    assert gort.nilchan.cap == 0


# --- unbuffered -----------------------------------------------------------------------------


def test_unbuffered_send_waits_for_receiver(procs: int) -> None:
    def main() -> tuple[object, list[str]]:
        log: list[str] = []
        ch = gort.chan()
        done = gort.chan()

        def sender() -> None:
            ch.send("v")
            log.append("sent")
            done.close()

        gort.go(sender)
        _spin()
        assert log == [], "an unbuffered send completed with nobody receiving"
        assert len(ch) == 0
        value = ch.recv()
        done.recv()
        return value, log

    assert gort.run(main, procs=procs) == ("v", ["sent"])


def test_unbuffered_recv_waits_for_sender(procs: int) -> None:
    def main() -> list[object]:
        log: list[object] = []
        ch = gort.chan()
        done = gort.chan()

        def receiver() -> None:
            log.append(ch.recv())
            done.close()

        gort.go(receiver)
        _spin()
        assert log == [], "an unbuffered receive completed with nobody sending"
        ch.send(42)
        done.recv()
        return log

    assert gort.run(main, procs=procs) == [42]


def _send_range_and_close(ch: gort.chan, n: int) -> None:
    for i in range(n):
        ch.send(i)
    ch.close()


def _received_from_one_sender(procs: int, cap: int, n: int) -> list[int]:
    def main() -> list[int]:
        ch = gort.chan(cap)
        gort.go(_send_range_and_close, ch, n)
        return list(ch)

    result: list[int] = gort.run(main, procs=procs)
    return result


def test_unbuffered_preserves_order_from_one_sender(procs: int) -> None:
    assert _received_from_one_sender(procs, 0, 2000) == list(range(2000))


def test_unbuffered_handoff_is_a_rendezvous(procs: int) -> None:
    # An unbuffered channel holds nothing: the sender can never complete more sends than
    # the receiver has completed receives.
    n = 500

    def main() -> list[int]:
        ch = gort.chan()
        ahead: list[int] = []
        sent = [0]

        def sender() -> None:
            for i in range(n):
                ch.send(i)
                sent[0] += 1

        gort.go(sender)
        for i in range(n):
            assert ch.recv() == i
            ahead.append(sent[0] - (i + 1))
        return ahead

    ahead = gort.run(main, procs=procs)
    # after the k-th receive at most k sends can have completed
    assert all(d <= 0 for d in ahead), max(ahead)


def test_values_of_any_type_pass_unchanged(procs: int) -> None:
    sentinel = object()
    values: list[object] = [None, 0, "", (1, 2), [3], {"k": 4}, sentinel, gort.chan(1)]

    def main() -> list[object]:
        ch = gort.chan()

        def sender() -> None:
            for v in values:
                ch.send(v)

        gort.go(sender)
        return [ch.recv() for _ in values]

    got = gort.run(main, procs=procs)
    assert all(a is b for a, b in zip(got, values, strict=True))


def test_none_sent_is_distinguished_by_recv2(procs: int) -> None:
    def main() -> tuple[object, object]:
        ch = gort.chan(1)
        ch.send(None)
        ch.close()
        return ch.recv2(), ch.recv2()

    assert gort.run(main, procs=procs) == ((None, True), (None, False))


def test_channel_of_channels(procs: int) -> None:
    def server(requests: gort.chan) -> None:
        for n, reply in requests:
            reply.send(n * 2)

    def main() -> list[int]:
        requests = gort.chan()
        gort.go(server, requests)
        out = []
        for n in range(20):
            reply = gort.chan()
            requests.send((n, reply))
            out.append(reply.recv())
        requests.close()
        return out

    assert gort.run(main, procs=procs) == [n * 2 for n in range(20)]


def test_many_senders_many_receivers_unbuffered(procs: int) -> None:
    senders, receivers, per_sender = 10, 10, 300

    def sender(k: int, ch: gort.chan, done: gort.chan) -> None:
        for i in range(per_sender):
            ch.send((k, i))
        done.send(None)

    def receiver(ch: gort.chan, results: gort.chan) -> None:
        results.send(list(ch))

    def main() -> list[tuple[int, int]]:
        ch, done, results = gort.chan(), gort.chan(), gort.chan()
        for k in range(senders):
            gort.go(sender, k, ch, done)
        for _ in range(receivers):
            gort.go(receiver, ch, results)
        for _ in range(senders):
            done.recv()
        ch.close()
        got: list[tuple[int, int]] = []
        for _ in range(receivers):
            part = results.recv()
            # each receiver sees every sender's values in that sender's order
            for k in range(senders):
                mine = [i for kk, i in part if kk == k]
                assert mine == sorted(mine)
            got.extend(part)
        return got

    got = gort.run(main, procs=procs)
    assert sorted(got) == [(k, i) for k in range(senders) for i in range(per_sender)]


# --- buffered -----------------------------------------------------------------------------


def test_buffered_fills_without_blocking_and_is_fifo(procs: int) -> None:
    def main() -> tuple[list[int], list[int], list[int]]:
        ch = gort.chan(5)
        lens = []
        for i in range(5):
            ch.send(i)  # would deadlock main if a send with room blocked
            lens.append(len(ch))
        got = []
        after = []
        for _ in range(5):
            got.append(ch.recv())
            after.append(len(ch))
        return lens, got, after

    assert gort.run(main, procs=procs) == ([1, 2, 3, 4, 5], [0, 1, 2, 3, 4], [4, 3, 2, 1, 0])


def test_buffered_fifo_interleaved(procs: int) -> None:
    def main() -> list[int]:
        ch = gort.chan(3)
        got = []
        nxt = 0
        for step in range(300):
            if step % 3 != 2 and len(ch) < ch.cap:
                ch.send(nxt)
                nxt += 1
            elif len(ch):
                got.append(ch.recv())
        while len(ch):
            got.append(ch.recv())
        return got

    got = gort.run(main, procs=procs)
    assert got == list(range(len(got)))
    assert len(got) > 100


def test_buffered_send_blocks_when_full(procs: int) -> None:
    def main() -> tuple[list[int], int, list[int]]:
        ch = gort.chan(2)
        log: list[int] = []
        done = gort.chan()

        def sender() -> None:
            for i in range(3):
                ch.send(i)
                log.append(i)
            done.close()

        gort.go(sender)
        _spin()
        assert log == [0, 1], "third send did not block on a full channel"
        assert len(ch) == 2
        first = ch.recv()
        done.recv()
        assert len(ch) == 2
        return log, first, [ch.recv(), ch.recv()]

    assert gort.run(main, procs=procs) == ([0, 1, 2], 0, [1, 2])


def test_buffered_recv_blocks_when_empty(procs: int) -> None:
    def main() -> list[object]:
        ch = gort.chan(4)
        log: list[object] = []
        done = gort.chan()

        def receiver() -> None:
            log.append(ch.recv())
            done.close()

        gort.go(receiver)
        _spin()
        assert log == []
        ch.send("x")
        done.recv()
        return log

    assert gort.run(main, procs=procs) == ["x"]


def test_buffered_producer_consumer_order(procs: int) -> None:
    assert _received_from_one_sender(procs, 7, 5000) == list(range(5000))


def test_blocked_senders_keep_their_values_in_order(procs: int) -> None:
    # One sender blocked on a full buffer: after a receive its value moves into the buffer
    # behind the ones already there.
    def main() -> list[int]:
        ch = gort.chan(2)
        ch.send(0)
        ch.send(1)
        done = gort.chan()

        def sender() -> None:
            ch.send(2)
            done.close()

        gort.go(sender)
        _spin()
        first = ch.recv()
        done.recv()
        return [first, ch.recv(), ch.recv()]

    assert gort.run(main, procs=procs) == [0, 1, 2]


# --- close ----------------------------------------------------------------------------------


def test_recv_on_closed_returns_buffered_values_then_none(procs: int) -> None:
    def main() -> list[object]:
        ch = gort.chan(3)
        ch.send("a")
        ch.send("b")
        ch.close()
        assert len(ch) == 2
        return [ch.recv(), ch.recv(), ch.recv(), ch.recv(), len(ch)]

    assert gort.run(main, procs=procs) == ["a", "b", None, None, 0]


def test_recv2_on_closed_returns_buffered_values_then_not_ok(procs: int) -> None:
    def main() -> list[object]:
        ch = gort.chan(3)
        ch.send("a")
        ch.send("b")
        ch.close()
        return [ch.recv2() for _ in range(4)]

    assert gort.run(main, procs=procs) == [("a", True), ("b", True), (None, False), (None, False)]


def test_recv_on_closed_unbuffered_does_not_block(procs: int) -> None:
    def main() -> tuple[object, object]:
        ch = gort.chan()
        ch.close()
        return ch.recv(), ch.recv2()

    assert gort.run(main, procs=procs) == (None, (None, False))


def test_iteration_ends_on_close(procs: int) -> None:
    def main() -> list[int]:
        ch = gort.chan(10)
        for i in range(4):
            ch.send(i)
        ch.close()
        first = list(ch)
        again = list(ch)
        return first + again

    assert gort.run(main, procs=procs) == [0, 1, 2, 3]


Start = Callable[..., None]  # starts goroutines: _go_all, or Spread.go (every P)


def _go_all(*fns: Callable[[], object]) -> None:
    for fn in fns:
        gort.go(fn)


def test_close_wakes_every_waiting_receiver(procs: int) -> None:
    _close_wakes_receivers(procs, _go_all)


def test_close_wakes_every_waiting_receiver_on_every_p(spread: Spread) -> None:
    _close_wakes_receivers(spread.procs, spread.go)


def _close_wakes_receivers(procs: int, start: Start) -> None:
    n = 20

    def main() -> list[object]:
        ch = gort.chan()
        ready = gort.chan()
        results = gort.chan(n)

        def waiter() -> None:
            ready.send(None)
            results.send(ch.recv2())

        start(*[waiter] * n)
        for _ in range(n):
            ready.recv()
        _spin()  # let them park in recv2
        ch.close()
        return [results.recv() for _ in range(n)]

    assert gort.run(main, procs=procs) == [(None, False)] * n


def test_close_wakes_every_waiting_iterator(procs: int) -> None:
    n = 10

    def main() -> list[list[object]]:
        ch = gort.chan()
        results = gort.chan()

        def drain() -> None:
            results.send(list(ch))

        for _ in range(n):
            gort.go(drain)
        _spin()
        ch.close()
        return [results.recv() for _ in range(n)]

    assert gort.run(main, procs=procs) == [[]] * n


def test_close_wakes_every_waiting_sender_with_panic(procs: int) -> None:
    _close_wakes_senders(procs, _go_all)


def test_close_wakes_every_waiting_sender_on_every_p_with_panic(spread: Spread) -> None:
    _close_wakes_senders(spread.procs, spread.go)


def _close_wakes_senders(procs: int, start: Start) -> None:
    n = 20

    def main() -> list[str]:
        ch = gort.chan()
        ready = gort.chan()
        results = gort.chan(n)

        def sender(i: int) -> None:
            ready.send(None)
            try:
                ch.send(i)
            except gort.Panic as exc:
                results.send(str(exc))
            else:
                results.send("send completed")

        start(*[lambda i=i: sender(i) for i in range(n)])
        for _ in range(n):
            ready.recv()
        _spin()  # let them park in send
        ch.close()
        return [results.recv() for _ in range(n)]

    assert gort.run(main, procs=procs) == ["send on closed channel"] * n


def test_close_of_full_buffered_channel_wakes_blocked_sender_with_panic(procs: int) -> None:
    def main() -> list[object]:
        ch = gort.chan(1)
        ch.send("kept")
        result = gort.chan(1)

        def sender() -> None:
            try:
                ch.send("lost")
            except gort.Panic as exc:
                result.send(str(exc))

        gort.go(sender)
        _spin()
        ch.close()
        return [result.recv(), ch.recv2(), ch.recv2()]

    assert gort.run(main, procs=procs) == ["send on closed channel", ("kept", True), (None, False)]


@pytest.mark.parametrize("cap", [0, 1, 3])
def test_send_on_closed_channel_panics(procs: int, cap: int) -> None:
    def main() -> str:
        ch = gort.chan(cap)
        ch.close()
        try:
            ch.send(1)
        except gort.Panic as exc:
            return str(exc)
        return "no panic"

    assert gort.run(main, procs=procs) == "send on closed channel"


@pytest.mark.parametrize("cap", [0, 2])
def test_close_of_closed_channel_panics(procs: int, cap: int) -> None:
    def main() -> str:
        ch = gort.chan(cap)
        ch.close()
        try:
            ch.close()
        except gort.Panic as exc:
            return str(exc)
        return "no panic"

    assert gort.run(main, procs=procs) == "close of closed channel"


def test_close_of_nil_channel_panics(procs: int) -> None:
    def main() -> str:
        try:
            gort.nilchan.close()
        except gort.Panic as exc:
            return str(exc)
        return "no panic"

    assert gort.run(main, procs=procs) == "close of nil channel"


def test_panic_is_an_exception() -> None:
    assert issubclass(gort.Panic, Exception)
    assert issubclass(gort.Deadlock, Exception)


# --- nil channel ----------------------------------------------------------------------------


def test_nilchan_blocks_forever_while_program_continues(procs: int) -> None:
    started = time.monotonic()

    def main() -> list[str]:
        log: list[str] = []
        out = gort.chan()

        def stuck_recv() -> None:
            gort.nilchan.recv()
            log.append("nil recv returned")

        def stuck_recv2() -> None:
            gort.nilchan.recv2()
            log.append("nil recv2 returned")

        def stuck_send() -> None:
            gort.nilchan.send(1)
            log.append("nil send returned")

        def stuck_iter() -> None:
            for _ in gort.nilchan:
                log.append("nil iteration produced")
            log.append("nil iteration ended")

        def worker() -> None:
            for i in range(100):
                out.send(i)
            out.close()

        for f in (stuck_recv, stuck_recv2, stuck_send, stuck_iter):
            gort.go(f)
        gort.go(worker)
        total = sum(out)
        _spin()
        log.append(f"total {total}")
        return log

    assert gort.run(main, procs=procs) == [f"total {sum(range(100))}"]
    assert time.monotonic() - started < 10
