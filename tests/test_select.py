"""select: ready-case choice, default, nil cases, send/recv/recv2 cases, blocking, fairness."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import pytest

import gort
from conftest import Spread


def _spin(times: int = 200) -> None:
    for _ in range(times):
        gort.gosched()


# --- non-blocking choice ----------------------------------------------------------------------


def test_ready_recv_case_is_chosen(procs: int) -> None:
    def main() -> tuple[object, ...]:
        a, b, c = gort.chan(1), gort.chan(1), gort.chan(1)
        b.send("from b")
        return gort.select(a.recv, b.recv, c.recv)

    assert gort.run(main, procs=procs) == (1, "from b")


@pytest.mark.parametrize("position", [0, 1, 2])
def test_default_when_nothing_ready(procs: int, position: int) -> None:
    def main() -> tuple[object, ...]:
        a, b = gort.chan(), gort.chan(1)
        cases: list[object] = [a.recv, b.recv]
        cases.insert(position, gort.default)
        return gort.select(*cases)

    assert gort.run(main, procs=procs) == (position, None)


@pytest.mark.parametrize("position", [0, 1])
def test_ready_case_beats_default(procs: int, position: int) -> None:
    def main() -> list[tuple[object, ...]]:
        ch = gort.chan(1)
        out = []
        for i in range(50):
            ch.send(i)
            cases: list[object] = [ch.recv]
            cases.insert(position, gort.default)
            out.append(gort.select(*cases))
        return out

    recv_index = 1 - position
    assert gort.run(main, procs=procs) == [(recv_index, i) for i in range(50)]


def test_many_cases_one_ready(procs: int) -> None:
    def main() -> list[tuple[object, ...]]:
        chans = [gort.chan(1) for _ in range(100)]
        out = []
        for k in (0, 37, 99):
            chans[k].send(k)
            out.append(gort.select(*[c.recv for c in chans]))
        return out

    assert gort.run(main, procs=procs) == [(0, 0), (37, 37), (99, 99)]


def test_default_alone(procs: int) -> None:
    assert gort.run(lambda: gort.select(gort.default), procs=procs) == (0, None)


def test_nil_cases_are_never_chosen(procs: int) -> None:
    def main() -> Counter[int]:
        ch = gort.chan()
        ch.close()
        nil = gort.nilchan
        chosen: Counter[int] = Counter()
        for _ in range(500):
            i, _v = gort.select(nil.recv, (nil.send, 1), ch.recv, nil.recv2, gort.default)
            chosen[i] += 1
        return chosen

    assert gort.run(main, procs=procs) == Counter({2: 500})


def test_only_nil_cases_and_default_choose_default(procs: int) -> None:
    def main() -> tuple[object, ...]:
        nil = gort.nilchan
        return gort.select(nil.recv, (nil.send, 1), nil.recv2, gort.default)

    assert gort.run(main, procs=procs) == (3, None)


def test_send_case_with_room_and_when_full(procs: int) -> None:
    def main() -> list[object]:
        ch = gort.chan(1)
        first = gort.select((ch.send, "x"), gort.default)
        second = gort.select((ch.send, "y"), gort.default)
        return [first, second, len(ch), ch.recv()]

    assert gort.run(main, procs=procs) == [(0, None), (1, None), 1, "x"]


def test_unbuffered_cases_without_partner_choose_default(procs: int) -> None:
    def main() -> tuple[object, ...]:
        ch = gort.chan()
        return gort.select(ch.recv, (ch.send, 1), ch.recv2, gort.default)

    assert gort.run(main, procs=procs) == (3, None)


def test_recv2_case_values(procs: int) -> None:
    def main() -> list[tuple[object, ...]]:
        ch = gort.chan(2)
        ch.send("v")
        ch.send(None)
        ch.close()
        return [gort.select(gort.default, ch.recv2) for _ in range(4)]

    assert gort.run(main, procs=procs) == [
        (1, ("v", True)),
        (1, (None, True)),
        (1, (None, False)),
        (1, (None, False)),
    ]


def test_recv_case_on_closed_channel_is_ready(procs: int) -> None:
    def main() -> tuple[object, ...]:
        ch = gort.chan()
        ch.close()
        return gort.select(ch.recv, gort.default)

    assert gort.run(main, procs=procs) == (0, None)


def test_recv_case_takes_value_from_blocked_sender(procs: int) -> None:
    def main() -> tuple[object, ...]:
        ch = gort.chan()
        done = gort.chan()

        def sender() -> None:
            ch.send("handed over")
            done.close()

        gort.go(sender)
        _spin()
        result = gort.select(ch.recv, gort.default)
        done.recv()  # the sender was released by the select's receive
        return result

    assert gort.run(main, procs=procs) == (0, "handed over")


def test_send_case_hands_value_to_blocked_receiver(procs: int) -> None:
    def main() -> tuple[tuple[object, ...], object]:
        ch = gort.chan()
        got = gort.chan(1)

        def receiver() -> None:
            got.send(ch.recv())

        gort.go(receiver)
        _spin()
        result = gort.select((ch.send, "to receiver"), gort.default)
        return result, got.recv()

    assert gort.run(main, procs=procs) == ((0, None), "to receiver")


def test_select_send_on_closed_channel_panics(procs: int) -> None:
    def main() -> list[str]:
        ch = gort.chan(1)
        ch.close()
        out = []
        for cases in ([(ch.send, 1)], [(ch.send, 1), gort.default]):
            try:
                gort.select(*cases)
            except gort.Panic as exc:
                out.append(str(exc))
            else:
                out.append("no panic")
        return out

    assert gort.run(main, procs=procs) == ["send on closed channel"] * 2


def test_duplicate_cases_on_one_channel(procs: int) -> None:
    def main() -> list[tuple[object, ...]]:
        ch = gort.chan(1)
        ch.send("once")
        first = gort.select(ch.recv, ch.recv, gort.default)
        second = gort.select(ch.recv, ch.recv, gort.default)
        return [first, second]

    first, second = gort.run(main, procs=procs)
    assert first in ((0, "once"), (1, "once"))
    assert second == (2, None)


# --- blocking select --------------------------------------------------------------------------


def test_select_blocks_until_a_case_is_ready(procs: int) -> None:
    def main() -> tuple[object, ...]:
        a, b = gort.chan(), gort.chan()

        def sender() -> None:
            _spin()
            b.send("late")

        gort.go(sender)
        return gort.select(a.recv, b.recv)

    assert gort.run(main, procs=procs) == (1, "late")


def test_blocked_select_wakes_on_close(procs: int) -> None:
    def main() -> tuple[object, ...]:
        a, b = gort.chan(), gort.chan()

        def closer() -> None:
            _spin()
            a.close()

        gort.go(closer)
        return gort.select(a.recv2, b.recv2)

    assert gort.run(main, procs=procs) == (0, (None, False))


def test_blocked_select_send_wakes_on_receiver(procs: int) -> None:
    def main() -> tuple[tuple[object, ...], object]:
        a, b = gort.chan(), gort.chan()
        got = gort.chan(1)

        def receiver() -> None:
            _spin()
            got.send(b.recv())

        gort.go(receiver)
        return gort.select((a.send, "a"), (b.send, "b")), got.recv()

    assert gort.run(main, procs=procs) == ((1, None), "b")


def test_blocked_select_send_panics_when_channel_closed(procs: int) -> None:
    def main() -> str:
        ch = gort.chan()

        def closer() -> None:
            _spin()
            ch.close()

        gort.go(closer)
        try:
            gort.select((ch.send, 1), gort.nilchan.recv)
        except gort.Panic as exc:
            return str(exc)
        return "no panic"

    assert gort.run(main, procs=procs) == "send on closed channel"


def test_select_does_not_pair_with_itself(procs: int) -> None:
    # A select holding both a send and a receive on one unbuffered channel cannot
    # communicate with itself: only the other goroutine's receive can complete it.
    def main() -> tuple[tuple[object, ...], object]:
        ch = gort.chan()
        got = gort.chan(1)

        def receiver() -> None:
            _spin()
            got.send(ch.recv())

        gort.go(receiver)
        return gort.select((ch.send, "mine"), ch.recv), got.recv()

    assert gort.run(main, procs=procs) == ((0, None), "mine")


Start = Callable[..., None]  # starts goroutines: _go_all, or Spread.go (every P)


def _go_all(*fns: Callable[[], object]) -> None:
    for fn in fns:
        gort.go(fn)


def test_waiting_selects_each_receive_exactly_once(procs: int) -> None:
    _waiting_selects_receive(procs, _go_all)


def test_waiting_selects_on_every_p_each_receive_exactly_once(spread: Spread) -> None:
    _waiting_selects_receive(spread.procs, spread.go)


def _waiting_selects_receive(procs: int, start: Start) -> None:
    # Many goroutines parked in select over the same two channels: each value sent must
    # wake exactly one of them, and a select woken through one case must be gone from the
    # other channel's queue.
    n = 100

    def main() -> list[object]:
        a, b = gort.chan(), gort.chan()
        results = gort.chan(n)

        def waiter() -> None:
            i, v = gort.select(a.recv, b.recv)
            results.send((i, v))

        start(*[waiter] * n)
        _spin()
        for k in range(n):
            (a if k % 2 == 0 else b).send(k)
        return [results.recv() for _ in range(n)]

    got = gort.run(main, procs=procs)
    assert sorted(v for _, v in got) == list(range(n))
    assert all(i == v % 2 for i, v in got)


def test_waiting_select_senders_each_send_exactly_once(procs: int) -> None:
    _waiting_select_senders(procs, _go_all)


def test_waiting_select_senders_on_every_p_each_send_exactly_once(spread: Spread) -> None:
    _waiting_select_senders(spread.procs, spread.go)


def _waiting_select_senders(procs: int, start: Start) -> None:
    n = 100

    def main() -> list[tuple[object, ...]]:
        a, b = gort.chan(), gort.chan()

        def sender(k: int) -> None:
            gort.select((a.send, ("a", k)), (b.send, ("b", k)))

        start(*[lambda k=k: sender(k) for k in range(n)])
        got = [gort.select(a.recv, b.recv) for _ in range(n)]
        _spin()
        # no sender can have completed twice: nothing more is on offer
        assert gort.select(a.recv, b.recv, gort.default) == (2, None)
        return got

    got = gort.run(main, procs=procs)
    assert sorted(k for _, (_, k) in got) == list(range(n))
    assert all("ab"[i] == tag for i, (tag, _) in got)


def test_select_ping_pong(procs: int) -> None:
    rounds = 1000

    def player(inbox: gort.chan, outbox: gort.chan, quit_: gort.chan) -> None:
        while True:
            i, v = gort.select(inbox.recv, quit_.recv)
            if i == 1:
                return
            gort.select((outbox.send, v + 1))

    def main() -> int:
        ping, pong, quit_ = gort.chan(), gort.chan(), gort.chan()
        gort.go(player, ping, pong, quit_)
        v = 0
        for _ in range(rounds):
            ping.send(v)
            v = pong.recv() + 1
        quit_.close()
        return v

    assert gort.run(main, procs=procs) == 2 * rounds


def test_select_with_no_cases_blocks_forever_in_goroutine(procs: int) -> None:
    started = time.monotonic()

    def main() -> str:
        log: list[str] = []

        def stuck() -> None:
            gort.select()
            log.append("select() returned")

        def stuck_nil() -> None:
            gort.select(gort.nilchan.recv, (gort.nilchan.send, 0))
            log.append("nil select returned")

        gort.go(stuck)
        gort.go(stuck_nil)
        _spin()
        return ",".join(log) or "main done"

    assert gort.run(main, procs=procs) == "main done"
    assert time.monotonic() - started < 10


# --- fairness ---------------------------------------------------------------------------------

TRIALS = 10_000


def _assert_fair(counts: Counter[int], ready: list[int], trials: int) -> None:
    assert set(counts) == set(ready), counts
    share = 1 / len(ready)
    for i in ready:
        assert abs(counts[i] / trials - share) <= 0.05, counts


def test_fairness_two_closed_channels(procs: int) -> None:
    def main() -> Counter[int]:
        a, b = gort.chan(), gort.chan()
        a.close()
        b.close()
        counts: Counter[int] = Counter()
        for _ in range(TRIALS):
            i, _v = gort.select(a.recv, b.recv)
            counts[i] += 1
        return counts

    _assert_fair(gort.run(main, procs=procs), [0, 1], TRIALS)


def test_fairness_two_buffered_values_with_default(procs: int) -> None:
    def main() -> Counter[int]:
        a, b = gort.chan(1), gort.chan(1)
        counts: Counter[int] = Counter()
        for _ in range(TRIALS):
            if len(a) == 0:
                a.send("a")
            if len(b) == 0:
                b.send("b")
            i, v = gort.select(gort.default, a.recv, b.recv)
            assert v == " ab"[i]
            counts[i] += 1
        return counts

    _assert_fair(gort.run(main, procs=procs), [1, 2], TRIALS)


def test_fairness_two_send_cases(procs: int) -> None:
    def main() -> Counter[int]:
        a, b = gort.chan(1), gort.chan(1)
        counts: Counter[int] = Counter()
        for _ in range(TRIALS):
            i, _v = gort.select((a.send, 0), (b.send, 1))
            counts[i] += 1
            (a if i == 0 else b).recv()
        return counts

    _assert_fair(gort.run(main, procs=procs), [0, 1], TRIALS)


def test_fairness_three_cases_mixed(procs: int) -> None:
    trials = 9_000

    def main() -> Counter[int]:
        closed = gort.chan()
        closed.close()
        room = gort.chan(1)
        full = gort.chan(1)
        counts: Counter[int] = Counter()
        for _ in range(trials):
            if len(full) == 0:
                full.send(1)
            i, _v = gort.select(closed.recv2, (room.send, 1), gort.nilchan.recv, full.recv)
            counts[i] += 1
            if i == 1:
                room.recv()
        return counts

    _assert_fair(gort.run(main, procs=procs), [0, 1, 3], trials)
