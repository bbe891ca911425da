"""gort.monkey's threading, queue and concurrent.futures patches.

Each scenario runs in its own interpreter under ``python -m gort --patch``
(patching is process-global): the script asserts, prints what it found,
and the test checks the exit status and the output. Semantic scenarios run
at GOMAXPROCS 1 and 2.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gortproc import gort_env, run_script

pytestmark = pytest.mark.timeout(120)

PROCS = pytest.mark.parametrize("procs", ["1", "2"])


def ok(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def run_python(tmp_path: Path, src: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run src with plain ``python`` (it calls gort.run itself)."""
    script = tmp_path / "plain.py"
    script.write_text(textwrap.dedent(src))
    return subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env=gort_env(),
        timeout=timeout,
        cwd=tmp_path,
    )


def patched(tmp_path: Path, src: str, procs: str = "1") -> str:
    return ok(run_script(tmp_path, src, cli=("--patch", "--procs", procs)))


@PROCS
def test_threads_are_goroutines(tmp_path: Path, procs: str) -> None:
    """1,000 Threads each sleeping 0.2 s: all run at once as goroutines (far
    under 1,000 x 0.2 s), with no OS thread started for them, each with its
    own ident, current_thread and name; enumerate/active_count agree."""
    src = """
    import os, sys, threading, time, gort

    N = 1000

    def tasks():
        return len(os.listdir("/proc/self/task"))

    def main():
        assert threading.current_thread() is threading.main_thread()
        assert threading.get_ident() == threading.main_thread().ident
        before = tasks()
        seen = {}
        gate = threading.Event()
        ready = threading.Semaphore(0)
        def work(i):
            me = threading.current_thread()
            seen[i] = (threading.get_ident(), gort.goid(), me.name, me.ident, me.native_id)
            ready.release()
            gate.wait()
            time.sleep(0.2)
        ts = [threading.Thread(target=work, args=(i,), name=f"w{i}") for i in range(N)]
        t0 = time.monotonic()
        for t in ts:
            t.start()
            assert t.ident is not None and t.is_alive()
        for _ in range(N):
            ready.acquire()
        during = tasks()
        alive = threading.active_count()
        names = {t.name for t in threading.enumerate()}
        gate.set()
        for t in ts:
            t.join()
        elapsed = time.monotonic() - t0
        assert elapsed < N * 0.2 / 20, elapsed
        assert during <= before, (before, during)  # no thread per Thread
        assert alive == N + 1 and names == {"MainThread", *(f"w{i}" for i in range(N))}, alive
        assert all(s[0] == s[1] == s[3] for s in seen.values())  # ident is the goid
        assert len({s[0] for s in seen.values()}) == N
        assert all(seen[i][2] == f"w{i}" for i in range(N))
        assert {s[4] for s in seen.values()} <= {m.thread.native_id if m.thread else
            threading.main_thread().native_id for m in gort.runtime.runtime2.sched.allm}
        assert not any(t.is_alive() for t in ts)
        assert threading.active_count() == 1 and threading.enumerate() == [threading.main_thread()]
        print("OK")
    """
    assert patched(tmp_path, src, procs).strip() == "OK"


@PROCS
def test_lock_and_rlock(tmp_path: Path, procs: str) -> None:
    """Lock: exclusion under a tiny switch interval, try/timeout results and
    CPython's errors; RLock: reentrant, owned by the goroutine."""
    src = """
    import sys, threading, time, _thread
    import gort.monkey

    def cpython_error(call):
        try:
            call()
        except Exception as e:
            return type(e), str(e)

    def main():
        sys.setswitchinterval(1e-6)
        lk = threading.Lock()
        assert isinstance(lk, gort.monkey._threading.Lock)
        assert type(_thread.allocate_lock()) is type(lk)
        count = [0]
        def inc():
            for _ in range(200):
                with lk:
                    v = count[0]
                    time.sleep(0)
                    count[0] = v + 1
        ts = [threading.Thread(target=inc) for _ in range(20)]
        for t in ts: t.start()
        for t in ts: t.join()
        assert count[0] == 4000, count

        assert lk.acquire() is True and lk.locked()
        assert lk.acquire(False) is False
        t0 = time.monotonic()
        assert lk.acquire(timeout=0.1) is False
        assert time.monotonic() - t0 >= 0.09
        got = []
        def taker():
            got.append(lk.acquire(timeout=30))
        t = threading.Thread(target=taker); t.start()
        time.sleep(0.05)
        lk.release()
        t.join()
        assert got == [True] and lk.locked()
        lk.release()
        orig = gort.monkey._originals["_thread"]["allocate_lock"]()
        for args in [(False, 1), (True, -2), (True, 1e300)]:
            mine = cpython_error(lambda: lk.acquire(*args))
            assert mine == cpython_error(lambda: orig.acquire(*args)), args
        assert cpython_error(lk.release) == (RuntimeError, "release unlocked lock")

        r = threading.RLock()
        with r:
            with r:
                assert r._is_owned()
            out = []
            def other():
                out.append(r.acquire(timeout=0.05))
                out.append(cpython_error(r.release))
            t = threading.Thread(target=other); t.start(); t.join()
            assert out == [False, (RuntimeError, "cannot release un-acquired lock")], out
        assert cpython_error(r.release) == (RuntimeError, "cannot release un-acquired lock")
        print("OK")
    """
    assert patched(tmp_path, src, procs).strip() == "OK"


@PROCS
def test_condition_event_semaphore_barrier(tmp_path: Path, procs: str) -> None:
    """CPython's own classes over the patched lock: notify wakes waiters in
    the order they waited, timeouts return False or raise as CPython does."""
    src = """
    import threading, time

    def main():
        c = threading.Condition()
        order, waiting = [], threading.Semaphore(0)
        def waiter(i):
            with c:
                waiting.release()
                c.wait()
                order.append(i)
        ts = []
        for i in range(5):
            t = threading.Thread(target=waiter, args=(i,)); t.start(); ts.append(t)
            waiting.acquire()   # i waits before i+1 does
        for i in range(5):
            with c:
                c.notify()
            while len(order) < i + 1:
                time.sleep(0.001)
        for t in ts: t.join()
        assert order == [0, 1, 2, 3, 4], order
        with c:
            t0 = time.monotonic()
            assert c.wait(0.05) is False and time.monotonic() - t0 >= 0.04
            assert c.wait_for(lambda: False, timeout=0.02) is False
        flag = []
        def setter():
            time.sleep(0.02)
            with c:
                flag.append(1)
                c.notify_all()
        threading.Thread(target=setter).start()
        with c:
            assert c.wait_for(lambda: flag, timeout=30) == [1]

        e = threading.Event()
        assert e.wait(0.02) is False and not e.is_set()
        res = []
        ws = [threading.Thread(target=lambda: res.append(e.wait(30))) for _ in range(10)]
        for t in ws: t.start()
        e.set()
        for t in ws: t.join()
        assert res == [True] * 10 and e.wait() is True
        e.clear(); assert not e.is_set()

        s = threading.Semaphore(2)
        assert s.acquire() and s.acquire() and s.acquire(blocking=False) is False
        assert s.acquire(timeout=0.02) is False
        s.release(2)
        b = threading.BoundedSemaphore(1)
        b.acquire(); b.release()
        try:
            b.release()
        except ValueError as err:
            assert str(err) == "Semaphore released too many times"
        else:
            raise AssertionError("no ValueError")

        bar = threading.Barrier(4)
        idx = []
        bs = [threading.Thread(target=lambda: idx.append(bar.wait())) for _ in range(3)]
        for t in bs: t.start()
        idx.append(bar.wait())
        for t in bs: t.join()
        assert sorted(idx) == [0, 1, 2, 3]
        lone = threading.Barrier(2)
        try:
            lone.wait(timeout=0.02)
        except threading.BrokenBarrierError:
            assert lone.broken
        else:
            raise AssertionError("no BrokenBarrierError")
        print("OK")
    """
    assert patched(tmp_path, src, procs).strip() == "OK"


@PROCS
def test_local_identity_and_excepthook(tmp_path: Path, procs: str) -> None:
    """threading.local is per goroutine (Threads and plain gort.go ones);
    join timeouts, daemon, and an exception going through threading.excepthook."""
    src = """
    import threading, time, gort

    def main():
        loc = threading.local()
        loc.v = "main"
        got = {}
        def w(i):
            assert not hasattr(loc, "v")
            loc.v = i
            time.sleep(0.01)
            got[i] = loc.v
        ts = [threading.Thread(target=w, args=(i,)) for i in range(20)]
        for t in ts: t.start()
        done = gort.Chan()
        def plain():
            me = threading.current_thread()
            assert me is threading.current_thread()
            assert me.ident == threading.get_ident() == gort.goid()
            assert me.is_alive() and me.daemon and me in threading.enumerate()
            loc.v = "plain"
            done.send((loc.v, me))
        gort.go(plain)
        v, dummy = done.recv()
        for t in ts: t.join()
        assert v == "plain" and got == {i: i for i in range(20)} and loc.v == "main"

        t = threading.Thread(target=time.sleep, args=(5,), daemon=True)
        assert t.daemon and t.name.startswith("Thread-")
        t.start()
        t0 = time.monotonic()
        t.join(0.05)
        assert t.is_alive() and 0.04 <= time.monotonic() - t0 < 2
        try:
            threading.current_thread().join()
        except RuntimeError as e:
            assert str(e) == "cannot join current thread"

        seen = []
        threading.excepthook = lambda a: seen.append((a.exc_type, str(a.exc_value), a.thread.name))
        class Boom(threading.Thread):
            def run(self):
                raise ValueError("boom")
        b = Boom(name="B"); b.start(); b.join()
        q = threading.Thread(target=lambda: gort.goexit()); q.start(); q.join()
        assert seen == [(ValueError, "boom", "B")], seen
        threading.excepthook = threading.__excepthook__
        threading.Thread(target=lambda: 1 / 0, name="Z").start()
        print("OK")
    """
    p = run_script(tmp_path, src, cli=("--patch", "--procs", procs))
    assert ok(p).strip() == "OK"
    assert "Exception in thread Z:" in p.stderr and "ZeroDivisionError" in p.stderr


def test_parked_threads_left_at_the_end_of_the_run(tmp_path: Path) -> None:
    """main returns while Threads wait on a Lock (with and without timeout),
    a Condition and a queue: the run ends, nothing is left queued, the
    threads are stopped and the interpreter exits at once."""
    src = """
    import queue, threading, time, gort, gort.monkey

    lk = threading.Lock()
    cond = threading.Condition()
    q = queue.Queue()

    def main():
        lk.acquire()
        ts = [threading.Thread(target=lk.acquire),
              threading.Thread(target=lk.acquire, kwargs={"timeout": 60}),
              threading.Thread(target=lambda: cond.acquire() and cond.wait()),
              threading.Thread(target=q.get)]
        for t in ts: t.start()
        time.sleep(0.05)
        main.ts = ts

    t0 = time.monotonic()
    gort.run(main)
    assert not lk._waitq and not cond._waiters and not q.not_empty._waiters
    assert gort.monkey._threading._parked == [0]
    assert not any(t.is_alive() for t in main.ts)
    assert threading.active_count() == 1, threading.enumerate()
    lk.release()
    assert lk.acquire(timeout=1)   # outside the run: the original path
    print("OK", time.monotonic() - t0 < 10)
    """
    p = run_python(tmp_path, "import gort.monkey; gort.monkey.patch_all()\n" + textwrap.dedent(src))
    assert ok(p).strip() == "OK True"
    assert p.stderr == "", p.stderr  # no thread reported an error or swallowed the unwinding


def test_os_threads_and_goroutines_share_locks(tmp_path: Path) -> None:
    """Outside goroutines everything is the original: a Thread started before
    gort.run is an OS thread; it and goroutines share a Lock and an Event
    both ways, and a goroutine waiting for it is not called deadlocked."""
    src = """
    import gort.monkey
    gort.monkey.patch_all()
    import threading, time, gort

    lk = threading.Lock()
    ev = threading.Event()
    back = threading.Event()
    lk.acquire()
    def os_side():
        ev.wait()            # set by a goroutine
        time.sleep(0.1)
        lk.release()         # wakes the parked goroutine
        back.wait()
    t = threading.Thread(target=os_side)
    t.start()
    assert t.ident > 1 << 20 and t.native_id != threading.main_thread().native_id

    def main():
        ev.set()
        t0 = time.monotonic()
        assert lk.acquire(timeout=30)
        waited = time.monotonic() - t0
        back.set()
        print("OK", waited >= 0.05)

    gort.run(main)
    t.join()
    print("after", threading.active_count())
    """
    assert ok(run_python(tmp_path, src)).split() == ["OK", "True", "after", "1"]


@PROCS
def test_queues(tmp_path: Path, procs: str) -> None:
    """queue's classes park goroutines: order, bounds with timeouts, join,
    SimpleQueue; 20 producers and 20 consumers lose and repeat nothing."""
    src = """
    import queue, threading, time

    def main():
        assert queue.SimpleQueue is queue._PySimpleQueue
        lq, pq = queue.LifoQueue(), queue.PriorityQueue()
        for i in (3, 1, 2):
            lq.put(i); pq.put(i)
        assert [lq.get() for _ in range(3)] == [2, 1, 3]
        assert [pq.get() for _ in range(3)] == [1, 2, 3]
        b = queue.Queue(maxsize=1)
        b.put(1)
        try:
            b.put(2, timeout=0.02)
        except queue.Full:
            pass
        else:
            raise AssertionError("no Full")
        b.get(); b.task_done()
        try:
            b.get(timeout=0.02)
        except queue.Empty:
            pass
        sq = queue.SimpleQueue()
        try:
            sq.get(timeout=0.02)
        except queue.Empty:
            pass
        q = queue.Queue(maxsize=8)
        got = []
        def producer(p):
            for i in range(100):
                q.put((p, i))
        def consumer():
            while True:
                item = q.get()
                if item is None:
                    q.task_done()
                    return
                got.append(item)
                q.task_done()
        ps = [threading.Thread(target=producer, args=(p,)) for p in range(20)]
        cs = [threading.Thread(target=consumer) for _ in range(20)]
        for t in ps + cs: t.start()
        for t in ps: t.join()
        for _ in cs: q.put(None)
        q.join()
        for t in cs: t.join()
        assert sorted(got) == [(p, i) for p in range(20) for i in range(100)]
        out = []
        def sq_reader():
            out.extend(sq.get() for _ in range(3))
        r = threading.Thread(target=sq_reader); r.start()
        for i in range(3):
            sq.put(i)
        r.join()
        assert out == [0, 1, 2]
        print("OK")
    """
    assert patched(tmp_path, src, procs).strip() == "OK"


@PROCS
def test_thread_pool_executor(tmp_path: Path, procs: str) -> None:
    """ThreadPoolExecutor's workers are goroutines: map keeps order and runs
    concurrently, submit/wait/as_completed with timeouts, shutdown waits."""
    src = """
    import os, threading, time, gort
    from concurrent.futures import (ThreadPoolExecutor, as_completed, wait, TimeoutError,
                                    FIRST_COMPLETED)

    def job(x):
        time.sleep(0.2)
        gort.goid()          # raises outside a goroutine
        return x * x

    def main():
        tasks = len(os.listdir("/proc/self/task"))
        with ThreadPoolExecutor(max_workers=32) as ex:
            t0 = time.monotonic()
            assert list(ex.map(job, range(32))) == [x * x for x in range(32)]
            assert time.monotonic() - t0 < 32 * 0.2 / 4
            assert len(os.listdir("/proc/self/task")) <= tasks
            fs = [ex.submit(job, i) for i in range(4)]
            done, not_done = wait(fs, timeout=0.01)
            assert not done and len(not_done) == 4
            done, _ = wait(fs, return_when=FIRST_COMPLETED)
            assert done
            assert sorted(f.result() for f in as_completed(fs, timeout=30)) == [0, 1, 4, 9]
            slow = ex.submit(time.sleep, 1)
            try:
                list(as_completed([slow], timeout=0.02))
            except TimeoutError:
                pass
            else:
                raise AssertionError("no TimeoutError")
            bad = ex.submit(lambda: 1 / 0)
            try:
                bad.result(timeout=30)
            except ZeroDivisionError:
                pass
        assert slow.done()   # shutdown(wait=True) waited for it
        ex = ThreadPoolExecutor(2)
        f = ex.submit(job, 3)
        ex.shutdown(wait=True)
        assert f.result() == 9 and not any(t.is_alive() for t in ex._threads)
        print("OK")
    """
    p = run_script(tmp_path, src, cli=("--patch", "--procs", procs))
    assert ok(p).strip() == "OK"
    assert "Exception" not in p.stderr, p.stderr


def test_patching_twice_and_is_patched(tmp_path: Path) -> None:
    """patch_thread/queue/futures are no-ops the second time; is_patched
    names them; gort's own threads (Ms, sysmon) stay OS threads."""
    src = """
    import gort, gort.monkey, threading, queue
    assert not gort.monkey.is_patched("threading")
    gort.monkey.patch_all()
    for m in ("threading", "_thread", "queue", "concurrent.futures"):
        assert gort.monkey.is_patched(m), m
    assert not gort.monkey.patch_thread() and not gort.monkey.patch_queue()
    assert not gort.monkey.patch_futures()
    from gort.runtime import proc
    assert proc.threading is not threading and proc.threading.Lock is not threading.Lock

    def main():
        gort.go(lambda: None)
        sched = gort.runtime.runtime2.sched
        ms = [m for m in sched.allm if m.thread is not None]
        assert len(ms) == 1 and ms[0].thread not in threading.enumerate()
        assert ms[0].thread.native_id != threading.main_thread().native_id
        print("OK")

    gort.run(main, procs=2)
    """
    assert ok(run_python(tmp_path, src)).strip() == "OK"


PLAIN = """
import sys, threading, time
from concurrent.futures import ThreadPoolExecutor
import gort

print(__name__, threading.current_thread() is threading.main_thread(), gort.goid())
done = []
def late():
    time.sleep(0.2)
    done.append(1)
    print("late thread done", flush=True)
threading.Thread(target=late).start()
ex = ThreadPoolExecutor(4)
fs = [ex.submit(time.sleep, 0.1) for _ in range(8)]
print("script end", flush=True)
if sys.argv[1:] == ["raise"]:
    def f():
        raise ValueError("bad")
    f()
elif sys.argv[1:2] == ["exit"]:
    sys.exit(int(sys.argv[2]) if sys.argv[2].isdigit() else sys.argv[2])
"""


@pytest.mark.parametrize(
    ("args", "status", "err"),
    [
        ((), 0, ""),
        (("raise",), 1, "ValueError: bad"),
        (("exit", "3"), 3, ""),
        (("exit", "bye"), 1, "bye"),
    ],
)
def test_patch_runs_a_plain_script(
    tmp_path: Path, args: tuple[str, ...], status: int, err: str
) -> None:
    """--patch on a script with no main(): its code runs as __main__ in
    goroutine 1; the program then waits for its non-daemon thread and its
    executor, and exits, reports and prints as ``python script.py`` would."""
    script = tmp_path / "plain.py"
    script.write_text(PLAIN)
    p = subprocess.run(
        [sys.executable, "-m", "gort", "--patch", str(script), *args],
        capture_output=True,
        text=True,
        env=gort_env(),
        timeout=60,
        cwd=tmp_path,
    )
    assert p.returncode == status, p.stdout + p.stderr
    assert p.stdout.splitlines() == ["__main__ True 1", "script end", "late thread done"]
    if args == ("raise",):
        tb = p.stderr.splitlines()
        assert tb[0] == "Traceback (most recent call last):" and "plain.py" in tb[1], p.stderr
        assert tb[-1] == err and "gort" not in p.stderr, p.stderr
    else:
        assert p.stderr.strip() == err, p.stderr


@pytest.mark.parametrize("procs", ["1", "2"])
def test_blocking_detector_names_the_call(tmp_path: Path, procs: str) -> None:
    """A goroutine held in a C call (hashlib.scrypt, unpatched time.sleep):
    the warning names the call and where, and points to gort.monkey.offload;
    a computation in Python names no call."""
    src = """
    import hashlib, time
    import gort

    def scrypt(done):
        hashlib.scrypt(b"pw", salt=b"s" * 16, n=2**16, r=8, p=1, maxmem=2**28)
        done.send(None)

    def sleeper(done):
        from time import sleep
        sleep(0.3)
        done.send(None)

    def spin(done):
        t = time.monotonic()
        while time.monotonic() - t < 0.3:
            pass
        done.send(None)

    def main():
        done = gort.chan()
        for f in (scrypt, sleeper, spin):
            gort.go(f, done)
            done.recv()
        print("OK")
    """
    p = run_script(
        tmp_path, src, env={"GODEBUG": "blockthreshold=50ms", "GOMAXPROCS": procs}, name="blk.py"
    )
    assert ok(p).strip() == "OK"
    held = [line for line in p.stderr.splitlines() if line.startswith("runtime: the M is held")]
    where = str(tmp_path / "blk.py")
    assert held == [
        f"runtime: the M is held by the call hashlib.scrypt(...) at {where}:6: run it on a "
        "syscall helper with gort.monkey.offload(hashlib.scrypt)(...) or gort.syscall",
        f"runtime: the M is held by the call sleep(...) at {where}:11: run it on a "
        "syscall helper with gort.monkey.offload(sleep)(...) or gort.syscall",
    ], p.stderr
    assert p.stderr.count("without yielding") >= 2, p.stderr  # the computation may be preempted
    spin = p.stderr.partition("blk.spin(...)")[2]
    assert "held by" not in spin, p.stderr  # a computation is no call


def test_late_patch_of_threading_warns(tmp_path: Path) -> None:
    """patch_all after the program started a thread and made a queue warns,
    naming threading and the script that imported it; both keep working."""
    src = """
    import queue, threading, warnings
    q = queue.Queue()
    go = threading.Event()
    t = threading.Thread(target=lambda: (go.wait(), q.put("late")))
    t.start()
    import gort, gort.monkey
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        gort.monkey.patch_all()
        gort.monkey.patch_all()
    msgs = [str(w.message) for w in ws if w.category is gort.monkey.MonkeyWarning]
    assert len(msgs) == 1 and "patching threading" in msgs[0], msgs
    assert "2 threading object(s)" in msgs[0] and "plain.py" in msgs[0], msgs
    go.set()
    assert q.get(timeout=30) == "late"
    t.join()
    print("OK")
    """
    assert ok(run_python(tmp_path, src)).strip() == "OK"


@PROCS
def test_thread_module_functions(tmp_path: Path, procs: str) -> None:
    """_thread.start_new_thread starts a goroutine and returns its ident; an
    exception in it goes to sys.unraisablehook as _thread reports it."""
    src = """
    import _thread, sys, threading

    def main():
        seen = []
        done = threading.Semaphore(0)
        def f(x):
            seen.append((x, _thread.get_ident(), threading.get_ident()))
            done.release()
        ident = _thread.start_new_thread(f, ("a",))
        done.acquire()
        assert seen == [("a", ident, ident)] and ident != threading.get_ident(), seen
        hooked = []
        sys.unraisablehook = lambda u: (hooked.append((u.exc_type, u.err_msg)), done.release())
        def bad():
            raise KeyError("k")
        _thread.start_new_thread(bad, ())
        done.acquire()
        assert hooked[0][0] is KeyError and hooked[0][1].startswith(
            "Exception ignored in thread started by"), hooked
        lk = _thread.allocate_lock()
        assert lk.acquire() and not lk.acquire(False)
        print("OK")
    """
    assert patched(tmp_path, src, procs).strip() == "OK"


@pytest.mark.skipif(sys.version_info < (3, 13), reason="_ThreadHandle is CPython 3.13+")
@PROCS
def test_thread_handles_on_313(tmp_path: Path, procs: str) -> None:
    """3.13+ starts threads through _start_joinable_thread and a handle: a
    goroutine thread's handle carries its goid, join parks until it ends
    (with a timeout too), _thread.start_joinable_thread starts a goroutine,
    and an OS thread can join a goroutine Thread."""
    src = """
    import _thread, threading, time, gort

    waiter = {}
    go_on = threading.Event()
    def os_side():
        go_on.wait()
        waiter["t"].join()           # an OS thread joins a goroutine Thread
        waiter["joined"] = waiter["t"].is_alive()
    ost = threading.Thread(target=os_side)
    ost.start()

    def main():
        release = threading.Event()
        seen = []
        def body():
            seen.append(gort.goid())
            release.wait()
        t = threading.Thread(target=body)
        t.start()
        assert t.ident == seen[0] == t._handle.ident and not t._handle.is_done()
        t0 = time.monotonic()
        t.join(0.05)
        assert t.is_alive() and 0.04 <= time.monotonic() - t0 < 2, repr(t)
        waiter["t"] = t
        go_on.set()
        release.set()
        t.join()
        assert not t.is_alive() and "stopped" in repr(t), repr(t)

        got = []
        h = _thread.start_joinable_thread(lambda: got.append(_thread.get_ident()))
        h.join()
        assert h.is_done() and got == [h.ident] and h.ident != threading.get_ident()
        print("OK")

    gort.run(main, procs=PROCS)
    ost.join()
    assert waiter["joined"] is False, waiter
    print("after", threading.active_count())
    """.replace("PROCS", procs)
    p = run_python(tmp_path, "import gort.monkey; gort.monkey.patch_all()\n" + textwrap.dedent(src))
    assert ok(p).split() == ["OK", "after", "1"]
