"""The goroutine scheduler (mirrors runtime/proc.go).

The model is Go's: G (goroutine), M (OS thread), P (processor: the right to
run goroutines, with a local run queue). ``schedule`` picks the next G with
``findrunnable``'s order and switches to it. What greenlets change:

* A greenlet runs only on the thread that created it, so a G that has
  started keeps its home P, and that P keeps its M for life. Only Gs that
  have not started yet move between Ps (stealing, the global queue).
  ``ready`` of a started G therefore always targets its home P: directly
  (``runnext``) on the home thread, or by ``inject`` from any other thread.
* A parking G switches straight to the next runnable G of its P (no trip
  through g0: a greenlet switch costs ~0.25 us, every one counts). Only when
  the P has nothing local does control go back to g0, whose loop is
  ``findrunnable`` in full: global queue, stealing, timers, sleeping.
* Finished goroutines leave their greenlet on the P's free list (Go's
  gfput/gfget keep a G's stack); a new goroutine starts on one of those,
  and a G that ends with an unstarted G next in line simply loops into it
  without any switch.

Rejected: one greenlet per goroutine, created and destroyed (7-12 us per
greenlet here, slower than an asyncio Task); moving started Gs between
threads (impossible with greenlets); a lock around each run queue (a lock
round trip is ~100 ns, several per switch). Run queues are deques instead:
each append/pop is atomic, and only the owner writes ``runnext``.

"Delicate dance" (proc.go findRunnable): an M about to sleep sets
``m.parked``, *then* re-checks its queues; a remote waker appends to the
queue, *then* reads ``m.parked``. Whatever the interleaving, either the
sleeper sees the work or the waker sees the sleeper and posts its note.
What that assumes of the memory model (the GIL, deque's atomic operations)
is written down at ``M.parked`` in runtime2.py.
"""

from __future__ import annotations

import contextvars
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, NoReturn

from greenlet import GreenletExit, getcurrent

from . import malloc
from . import time as _time
from . import trace as _trace
from .mcache import freemcache
from .panic import Deadlock, Fatal, Goexit, Panic, outside, panic_message
from .runtime2 import (
    G_DEAD,
    G_RUNNABLE,
    G_RUNNING,
    G_WAITING,
    GLOBAL_RUNQ_CHECK_TICK,
    P_DEAD,
    P_RUNNING,
    RUNQ_SIZE,
    STEAL_TRIES,
    G,
    GStack,
    M,
    P,
    m0owned,
    sched,
)
from .traceback import dump_all, format_panic

_get_ident = threading.get_ident

GFREE_MAX = 4096  # idle greenlets a P keeps (about 6 KB each); more are let die

_init_funcs: list[Callable[[], Any]] = []


# ---------------------------------------------------------------------------
# Finding the current goroutine.


def getg(call: str) -> G:
    """The calling goroutine; a RuntimeError naming ``call`` outside one."""
    try:
        gp: G = getcurrent().gp
    except AttributeError:
        raise outside(call) from None
    return gp


def checkpoint(call: str) -> G:
    """getg for runtime calls that do not park: honour a pending preemption
    first, as every function call in Go is a preemption point."""
    gp = getg(call)
    if sched.multi:
        preemptcheck()
    return gp


def current_g() -> G | None:
    return getattr(getcurrent(), "gp", None)


# ---------------------------------------------------------------------------
# Run queues. The owner appends and pops; others append (inject) or steal.


def runqput(pp: P, gp: G) -> None:
    """Put gp at the tail of pp's local queue. Owner M only.

    Only an unstarted G can overflow the queue: the ring's bound exists to
    share work, and started Gs cannot be shared. (Checking on every put
    made a burst of 100,000 timer wake-ups re-scan a queue of pinned Gs
    on each one.)
    """
    q = pp.runq
    q.append(gp)
    if len(q) > RUNQ_SIZE and gp.glet is None:
        runqputslow(pp)


def runqputslow(pp: P) -> None:
    """The local queue overflowed: move half of it to the global queue.

    Only unstarted Gs can go (a started G is pinned to its P's thread); the
    pinned ones popped on the way go back to the tail. Owner M only.
    """
    q = pp.runq
    moved = 0
    for _ in range(len(q) // 2):
        try:
            gp = q.popleft()
        except IndexError:
            break
        if gp.glet is None:
            sched.runq.append(gp)
            moved += 1
        else:
            q.append(gp)
    if moved and sched.multi:
        wakep()


def runqget(pp: P) -> G | None:
    """runnext first (it inherits the time slice), then the local queue."""
    gp = pp.runnext
    if gp is not None:
        pp.runnext = None
        return gp
    return runqpop(pp)


def runqpop(pp: P) -> G | None:
    """The local queue's head, which starts a new time slice (schedtick)."""
    try:
        gp = pp.runq.popleft()
    except IndexError:
        return None
    pp.schedtick += 1
    return gp


def globrunqget(pp: P, maxn: int) -> G | None:
    """Take a batch from the global queue: one to run, the rest to pp's queue.

    Like globrunqgetbatch: n = min(maxn, len/gomaxprocs + 1).
    """
    gq = sched.runq
    n = min(maxn, len(gq) // max(1, sched.gomaxprocs) + 1)
    try:
        gp = gq.popleft()
    except IndexError:
        return None
    for _ in range(n - 1):
        try:
            pp.runq.append(gq.popleft())
        except IndexError:
            break
    pp.schedtick += 1
    return gp


def inject(pp: P, gp: G) -> None:
    """Make gp runnable on pp from a thread that is not pp's M."""
    pp.runq.append(gp)
    m = pp.m
    if m is not None and m.parked:
        notewakeup(m)


def notewakeup(m: M) -> None:
    """Wake m from stopm, whether it sleeps on its note or in the poller
    (read after the caller queued the work: see "delicate dance")."""
    m.park.wakeup()
    if sched.pollm is m:
        brk = sched.netpoll_break
        if brk is not None:
            brk()


def ready(gp: G) -> None:
    """goready: gp (waiting) becomes runnable on its home P.

    On gp's home thread gp goes to runnext, so a ping-pong pair runs back
    to back; from any other thread it is injected (queued, *then* its M
    woken if it sleeps: the "delicate dance"). The test is by thread id,
    with one M too (``m0owned``): testing ``m.parked`` instead (as this did) reads it
    before queueing, so an M that parks in between sleeps on a G it never
    sees. Channel operations of threads that are not Ms no longer get here
    (cgocall.py); the test keeps any other caller safe. (Timers ready with
    time.readytimer.)
    """
    if sched.tracing:
        _trace.unblock(gp)
    gp.status = G_RUNNABLE
    pp = gp.p
    if sched.multi:
        m = pp.m
        if m is None or m.ident != _get_ident():
            inject(pp, gp)
            return
    elif not m0owned():  # the only M is M0
        inject(pp, gp)
        return
    old = pp.runnext
    pp.runnext = gp
    if old is not None:
        runqput(pp, old)


def ready_remote(gp: G) -> None:
    """goready from a thread that runs no goroutines (sysmon, syscall helpers)."""
    if sched.tracing:
        _trace.unblock(gp)
    gp.status = G_RUNNABLE
    pp = gp.p
    assert pp is not None
    inject(pp, gp)


def wakep() -> None:
    """New stealable work exists: wake one idle M to come and take it."""
    for pp in sched.allp:
        m = pp.m
        if m is not None and m.parked and pp.status == P_RUNNING:
            notewakeup(m)
            return


# ---------------------------------------------------------------------------
# Switching. Everything below runs on the thread of the P it is given.


def _start(pp: P, gp: G) -> Any:
    """Run unstarted gp on pp: on an idle greenlet of pp, or a new one.

    A new greenlet is created only on g0. A greenlet inherits the Python
    recursion depth of the frame that starts it, so greenlets started from
    inside goroutines would each start deeper than the last, until
    RecursionError; from g0 every greenlet starts at the same shallow depth.
    """
    free = pp.gfree
    m: M = pp.m
    if free:
        gl = free.pop()
    elif getcurrent() is m.g0:
        gl = GStack(_gbody, m.g0)
    else:
        pp.runnext = gp  # g0 will start it
        return m.g0.switch()
    gp.p = pp
    gp.status = G_RUNNING
    gl.gp = gp
    gp.glet = gl
    return gl.switch(gp)


def schedule(gp: G, pp: P) -> Any:
    """gp gives up pp (parked or yielded): switch to pp's next G.

    The fast path is runnext, the partner of a hand-off. Anything else goes
    through ``_schedule_slow``: the local queue, the end of the program
    (exitprogram sets every P's ``preempt`` to get here), a used-up time
    slice, or g0's full findrunnable.
    """
    pp.switches += 1
    gp.waitsince = 0.0  # Go's execute resets it; here parking does (no clock read)
    if sched.tracing:
        _trace.gostop(gp, pp)
    if pp.timers:
        _time.checktimers(pp)
    nxt = pp.runnext
    if nxt is not None and not pp.preempt:
        pp.runnext = None
    else:
        nxt = _schedule_slow(gp, pp)
        if nxt is None or nxt is gp:
            if nxt is None:
                pp.m.g0.switch()
            else:
                gp.status = G_RUNNING
            if sched.tracing:
                _trace.gostart(gp, pp)
            return None
    gl = nxt.glet
    if gl is None:
        _start(pp, nxt)
    else:
        nxt.status = G_RUNNING
        gl.switch()
    if sched.tracing:
        _trace.gostart(gp, pp)  # gp runs again (execute's traceGoStart)
    return None


def _schedule_slow(gp: G, pp: P) -> G | None:
    """schedule's other cases; None sends the caller to g0."""
    if sched.exiting:
        exitg(gp)
        return None  # gp is abandoned: g0 carries on without it
    if pp.status == P_DEAD:
        return None  # g0 sorts the retired P's queue: only started Gs run there
    if sched.seed is not None:
        return seednext(pp)  # pp.preempt stays set: every switch comes here
    pp.preempt = False  # this switch is the yield sysmon asked for
    nxt = pp.runnext
    if nxt is not None:
        # The time slice runnext inherits is used up: let the local
        # queue's head go first.
        runqput(pp, nxt)
        pp.runnext = None
    elif pp.schedtick % GLOBAL_RUNQ_CHECK_TICK == 0 and sched.runq:
        return None
    return runqpop(pp)


# ---------------------------------------------------------------------------
# The seeded scheduler (gort.run(seed=n), GORT_SCHEDSEED): Go's race mode
# shuffles the run queue to shake out order dependencies; trio's seeded
# scheduling makes the shuffle reproducible. Here every scheduling decision
# of a P (which runnable G runs next) and select's choice come from
# sched.rand, seeded once per run, so a run at GOMAXPROCS 1 whose goroutines
# do not look at the clock is a function of its seed. The unseeded paths pay
# one test of sched.seed (schedule's fast path pays none: seeding keeps every
# P's ``preempt`` set, which already routes it to _schedule_slow).


def seedsched(seed: int) -> None:
    """Make this run's scheduling a function of seed (before any G runs)."""
    sched.seed = seed
    sched.rand.seed(seed)
    # A preemption lands wherever the clock says (a loaded machine, a slow
    # slice) and would reorder the run: seeded runs have none, neither
    # asynchronous (as with GODEBUG=asyncpreemptoff=1) nor at preemptcheck.
    sched.debug.asyncpreemptoff = True
    for pp in sched.allp:
        pp.preempt = True


def seednext(pp: P) -> G | None:
    """Any runnable G of pp, runnext included, chosen by sched.rand.

    Owner M only. Others may append to the queue (inject) or steal from
    it meanwhile: what they append waits for the next pick, what they
    steal is not picked.
    """
    pp.preempt = True  # the next switch comes back here
    q = pp.runq
    nxt = pp.runnext
    if nxt is not None:
        pp.runnext = None
        q.append(nxt)
    while True:
        cands = list(q)
        if not cands:
            return None
        # The pick is by rank in goid order, not by queue position: where a
        # G was put (runnext or the tail, which depends on sched.multi, which
        # sysmon sets by the clock) must not change the run.
        cands.sort(key=_goidof)
        gp = cands[sched.rand.randrange(len(cands))]
        try:
            q.remove(gp)
        except ValueError:
            continue  # another P stole it meanwhile
        pp.schedtick += 1
        return gp


def _goidof(gp: G) -> int:
    return gp.goid


def preemptcheck() -> None:
    """A synchronous preemption point: yield if sysmon marked this P.

    Channel operations call it on their general path, which they take
    whenever ``sched.multi`` is set: sysmon sets it when it marks a P, so
    the single-M fast path pays nothing until there is a mark to honour.
    """
    gp: G | None = getattr(getcurrent(), "gp", None)
    if gp is None:
        # Not a goroutine: a thread gort did not start, or any thread once the
        # run is over (sched keeps the last run's exiting/multi until the
        # next run): nothing to yield, and multi is left to the Ms.
        if sched.exiting and sched.running:
            raise GreenletExit
        return
    if sched.exiting:
        exitg(gp)  # the program is over (the mark stays: see exitprogram)
        gp.p.m.g0.switch()  # abandoned: never resumed
        raise GreenletExit
    if sched.mcount == 1:
        sched.multi = False  # one M: the mark was the only reason to be here
    pp: P = gp.p
    if pp.preempt and sched.seed is None:  # a seeded run is never preempted by the clock
        pp.preempt = False
        goyield(gp, pp)


# Greenlets of goroutines that swallowed the GreenletExit of the end of their
# run and tried to run on: kept for ever, so that collecting them (which
# throws GreenletExit into them again) cannot resume them during a later run.
_abandoned: list[Any] = []


def exitg(gp: G) -> None:
    """The program is over and gp wants to go on (it parks, yields or was
    preempted). The first time, raise GreenletExit, so that its
    finally-blocks run; a goroutine that swallowed that (a bare ``except:``
    in a retry loop) is abandoned: this returns, and the caller switches to
    g0 for good. Either way the end of a run is bounded."""
    unwound = sched.unwound
    if gp.goid not in unwound:
        unwound.add(gp.goid)
        raise GreenletExit
    if gp.glet is not None:
        _abandoned.append(gp.glet)
    _write_stderr(
        f"gort: goroutine {gp.goid} swallowed GreenletExit at the end of the run "
        "and was abandoned (do not catch it with a bare except)\n"
    )


def goyield(gp: G, pp: P) -> None:
    """gp gives up pp but stays runnable, behind every G runnable now.

    Due timers run first, so that the goroutines they wake are in the queue
    ahead of gp (Go puts a yielding G on the global queue, which the local
    queue's newcomers precede).
    """
    if pp.timers:
        _time.checktimers(pp)
    gp.status = G_RUNNABLE
    runqput(pp, gp)
    schedule(gp, pp)


def gopark(
    gp: G,
    reason: str,
    cleanup: Callable[[Any], None] | None = None,
    arg: Any = None,
) -> None:
    """Park the calling goroutine until someone readies it.

    The caller has queued gp wherever its waker will find it and released
    any lock; gp runs only on this thread, so no waker can resume it before
    this switch (the hazard Go's park_m guards against cannot happen).

    Every park has a clean-up path: when the park is left by an exception
    instead of a wake-up (the end of the run unwinding gp with GreenletExit,
    an asynchronous exception), ``cleanup(arg)`` runs first, on gp's thread,
    and must undo what the caller registered (a sudog in a wait queue, a
    timer, a poller registration), taking whatever lock guards it. It must
    be idempotent: a waker may have consumed the registration already, and
    gp may even be runnable. trio's abort_fn plays the same part; unlike
    it, the clean-up cannot refuse. Hot paths (chan send/recv, select)
    inline the same try/except around ``schedule``.
    """
    gp.status = G_WAITING
    gp.waitreason = reason
    if cleanup is None:
        schedule(gp, gp.p)
        return
    try:
        schedule(gp, gp.p)
    except BaseException:
        cleanup(arg)
        raise


def gosched() -> None:
    """Yield the processor: gp goes behind every runnable G of its P."""
    gp = getg("gort.gosched")
    if sched.tracing:
        _trace.gosched(gp)
    goyield(gp, gp.p)


def goexit() -> NoReturn:
    """End the calling goroutine; finally-blocks run (runtime.Goexit)."""
    getg("gort.goexit")
    raise Goexit


def goid() -> int:
    return getg("gort.goid").goid


def num_goroutine() -> int:
    return len(sched.allgs)


def _gbody(gp: G | None) -> None:
    """The loop every goroutine greenlet runs: one goroutine after another.

    Each runs in its own context, set as the greenlet's ``gr_context``
    rather than through ``Context.run``: the call stays a Python-to-Python
    call, which CPython makes without a C-level frame, and every greenlet
    switch copies the C stack between the greenlet's base and the switch.
    """
    gl = getcurrent()
    # The loop's test is not its backward jump: CPython 3.11 specialises a
    # function's instructions once its calls and unconditional backward
    # jumps add up, and a greenlet calls this only once, for its whole life.
    while True:
        if gp is None:
            return
        gl.gr_context = gp.ctx
        if sched.tracing:
            _trace.gostart(gp, gp.p)
        # Up to three positional arguments make a plain call, which CPython
        # (3.11) runs without a C frame of its own: ``f(*args)`` nests one,
        # which every switch of the goroutine would copy with its stack.
        fn = gp.fn
        args = gp.args
        n = -1 if gp.kwargs else len(args)
        try:
            if n == 2:
                fn(args[0], args[1])
            elif n == 1:
                fn(args[0])
            elif n == 0:
                fn()
            elif n == 3:
                fn(args[0], args[1], args[2])
            else:
                fn(*args, **gp.kwargs)
        except Goexit:
            pass
        except GreenletExit:
            if sched.exiting or _stale(gp.p.m):
                raise  # the runtime unwinding the goroutine at the end
            # User code's own GreenletExit (gevent's "kill quietly"): it
            # ends only this goroutine, like Goexit.
        except BaseException as e:
            gopanic(gp, e)
            return  # the greenlet ends; its parent g0 sees sched.exiting
        del fn, args  # an idle greenlet keeps nothing of its last goroutine
        gp = goexit0(gp)


def _stale(m: M | None) -> bool:
    """m is gone or belongs to a run that has ended (teardown abandoned it)."""
    return m is None or m.gen != sched.generation


def goexit0(gp: G) -> G | None:
    """gp has finished: free it and find what this greenlet runs next.

    Returns the next G to run on this same greenlet, or None to let the
    greenlet end (its P's free list is full).
    """
    pp: P = gp.p
    pp.switches += 1
    if sched.tracing:
        _trace.goend(gp, pp)
    gl = gp.glet
    gp.status = G_DEAD
    sched.allgs.pop(gp.goid, None)  # gone already if its run has ended
    # G <-> sudog is a cycle; G <-> greenlet is one until gl.gp moves on
    # (below, in every path), after which the dead G is freed at once.
    gp.sudog = None
    if sched.exiting:
        return None
    if pp.status == P_DEAD:
        gl.gp = None  # type: ignore[union-attr]
        return None  # the greenlet ends; g0 runs what a retired P may still run
    if pp.timers:
        _time.checktimers(pp)
    nxt = _nextg_after_exit(pp)
    if nxt is not None and nxt.glet is None:
        # The next G has not started: it runs on this greenlet, no switch.
        nxt.p = pp
        nxt.glet = gl
        gl.gp = nxt  # type: ignore[union-attr]
        nxt.status = G_RUNNING
        return nxt
    gl.gp = None  # type: ignore[union-attr]
    if len(pp.gfree) >= GFREE_MAX:
        # This greenlet ends. A greenlet that ends switches to its parent,
        # so making the next G's greenlet the parent goes straight there
        # instead of through g0 (one switch, not two).
        if nxt is not None:
            nxt.status = G_RUNNING
            gl.parent = nxt.glet  # type: ignore[union-attr]
        return None
    pp.gfree.append(gl)  # type: ignore[arg-type]
    m = pp.m
    if nxt is None:
        r = m.g0.switch()
    else:
        nxt.status = G_RUNNING
        r = nxt.glet.switch()  # type: ignore[union-attr]
    return r if isinstance(r, G) else None


def _nextg_after_exit(pp: P) -> G | None:
    """What the greenlet of a goroutine that just ended runs next.

    Go's order (runnext, then the local queue), with one exception that
    saves two greenlet switches per goroutine: when runnext has started (it
    needs a switch to its own greenlet) while an unstarted G waits in the
    local or global queue (it can run on this greenlet at once), that G
    goes first and runnext keeps its place. Every 61st schedtick runnext
    goes first regardless, which bounds its wait. Only with one M: with
    several, a queue's head may be stolen between the look and the pop.
    """
    if sched.seed is not None:
        return seednext(pp)
    nxt = pp.runnext
    if nxt is not None:
        if nxt.glet is not None and not sched.multi and pp.schedtick % GLOBAL_RUNQ_CHECK_TICK:
            q = pp.runq
            if q:
                if q[0].glet is None:
                    pp.schedtick += 1  # runqpop, inlined: this runs once per goroutine
                    return q.popleft()
            elif sched.runq and pp.status == P_RUNNING:
                return globrunqget(pp, RUNQ_SIZE // 2)
        pp.runnext = None
        return nxt
    if pp.schedtick % GLOBAL_RUNQ_CHECK_TICK == 0 and sched.runq:
        return None  # g0's findrunnable takes from the global queue first
    nxt = runqpop(pp)
    if nxt is None and sched.runq and pp.status == P_RUNNING:
        return globrunqget(pp, RUNQ_SIZE // 2)
    return nxt


def newproc1(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> G:
    """A new runnable G (not yet queued) with no creator: goroutine 1, after_func."""
    goid = next(sched.goidgen)
    newg = G(goid, fn, args, kwargs, contextvars.copy_context(), None)
    sched.allgs[goid] = newg
    return newg


def newproc(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
    """gort.go: start fn(*args, **kwargs) in a new goroutine.

    Like Go's newproc the new G goes to runnext, except with several Ps,
    where it goes to the queue's tail so that an idle P can steal it (a
    stealer never takes runnext here).
    """
    try:
        cur: G = getcurrent().gp
    except AttributeError:
        raise outside("gort.go") from None
    f = sys._getframe(1)
    goid = next(sched.goidgen)
    newg = G(
        goid,
        fn,
        args,
        kwargs,
        contextvars.copy_context(),
        (f.f_code, f.f_lineno, f.f_globals, cur.goid),
    )
    sched.allgs[goid] = newg
    pp: P = cur.p
    if sched.tracing:
        _trace.gocreate(newg, pp, f)
    if sched.multi:
        preemptcheck()  # gort.go is a preemption point, like every call in Go
        if sched.multi:
            if pp.status == P_RUNNING:
                runqput(pp, newg)
            else:
                sched.runq.append(newg)  # a retired P starts no goroutine
            wakep()
            return
    old = pp.runnext
    pp.runnext = newg
    if old is not None:
        runqput(pp, old)


def spawn_local(pp: P, fn: Callable[..., Any], ctx: contextvars.Context) -> None:
    """Start fn in a new goroutine, in a copy of ctx, from pp's scheduler
    (after_func: the goroutine that happens to run when the timer fires has
    nothing to do with it)."""
    gp = newproc1(fn, (), {})
    gp.ctx = ctx.copy()
    if sched.tracing:
        _trace.gocreate(gp, pp, None)
    if pp.status == P_RUNNING:
        runqput(pp, gp)
    else:
        sched.runq.append(gp)  # a retired P starts no goroutine
    if sched.multi:
        wakep()


# ---------------------------------------------------------------------------
# findrunnable and the M's loop (on g0).


def findrunnable(m: M, pp: P) -> G | None:
    """Go's order: timers, fairness tick, local, global, steal, then sleep.

    Returns None when the program is over.
    """
    while True:
        if sched.exiting or m.gen != sched.generation:
            return None  # the program is over, or m is left from an earlier run
        if pp.timers:
            _time.checktimers(pp)
        if pp.status == P_DEAD:
            gp = _findretired(m, pp)
            if gp is not None or pp.m is not m:
                return gp  # a G, or the P retired: this M ends
            continue  # the end of the program, or a gomaxprocs revived the P
        if pp.schedtick % GLOBAL_RUNQ_CHECK_TICK == 0 and sched.runq:
            gp = globrunqget(pp, 1)
            if gp is not None:
                return gp
        gp = runqget(pp) if sched.seed is None else seednext(pp)
        if gp is not None:
            return gp
        if sched.runq:
            gp = globrunqget(pp, RUNQ_SIZE // 2)
            if gp is not None:
                return gp
        poll = sched.netpoll
        if poll is not None and sched.netpoll_waiters():
            ready_gs = poll(0.0)  # non-blocking, like Go's netpoll(0)
            for gp in ready_gs:
                ready_remote(gp)
            if ready_gs:
                continue
        if sched.multi:
            gp = stealwork(pp)
            if gp is not None:
                return gp
        hook = sched.idle_hook
        if hook is not None and hook(pp):
            continue  # a synctest bubble moved
        gp = stopm(m, pp)
        if gp is not None:
            return gp


def _retire_done(pp: P) -> bool:
    """A P removed by gomaxprocs ends once none of its goroutines is left."""
    return not any(gp.p is pp for gp in list(sched.allgs.values()))


def _coprimes(n: int) -> list[int]:
    from math import gcd

    return [i for i in range(1, n + 1) if gcd(i, n) == 1]


def stealwork(pp: P) -> G | None:
    """Steal unstarted Gs from the other Ps, visited in a random order.

    Go's randomOrder: with X coprime to n, (i + X) % n visits every P once.
    """
    allp = sched.allp
    n = len(allp)
    if n < 2:
        return None
    coprimes = _coprimes(n)
    for _ in range(STEAL_TRIES):
        r = sched.rand.getrandbits(31)
        pos, inc = r % n, coprimes[(r // n) % len(coprimes)]
        for _ in range(n):
            victim = allp[pos]
            pos = (pos + inc) % n
            if victim is pp or not victim.runq:
                continue
            gp = runqsteal(pp, victim)
            if gp is not None:
                return gp
    return None


def runqsteal(pp: P, victim: P) -> G | None:
    """Take half (rounded up) of victim's queue, keeping the unstarted Gs.

    Started Gs popped on the way are injected back into their home P.
    """
    q = victim.runq
    n = len(q) - len(q) // 2
    got: list[G] = []
    for _ in range(n):
        try:
            gp = q.popleft()
        except IndexError:
            break
        if gp.glet is None and gp.p is None:
            got.append(gp)
        else:
            inject(victim, gp)
    if not got:
        return None
    for gp in got[1:]:
        pp.runq.append(gp)
    pp.schedtick += 1
    return got[0]


def stopm(m: M, pp: P) -> G | None:
    """Sleep until woken, or until pp's next timer.

    Returns a G found in the last re-check (see "delicate dance" above).
    """
    m.parked = True
    gp = runqget(pp)
    if gp is None and sched.runq and pp.status != P_DEAD:
        gp = globrunqget(pp, RUNQ_SIZE // 2)
    if gp is None and sched.multi and pp.status != P_DEAD:
        gp = stealwork(pp)
    if gp is not None or sched.exiting:
        m.parked = False
        return gp
    if sched.tracing:
        _trace.procstop(pp)
    with sched.lock:
        sched.nmidle += 1
        checkdead()
    if not sched.exiting:
        block = sched.netpoll_block
        if block is None or not block(m, pp):
            m.park.sleep(_time.sleep_delay(pp))
    with sched.lock:
        sched.nmidle -= 1
    m.parked = False
    if sched.sysmonwait:
        sched.sysmon.wake()  # an M is up again: sysmon watches it
    return None


def schedule_loop(m: M) -> None:
    """The scheduler loop on g0: find a G, run it, repeat until the end."""
    pp = m.p
    assert pp is not None
    while True:
        gp = findrunnable(m, pp)
        if gp is None:
            return
        gl = gp.glet
        if gl is None:
            _start(pp, gp)
        else:
            gp.status = G_RUNNING
            gl.switch()


# ---------------------------------------------------------------------------
# The M and P lifecycle: newm, mstart, startm, procresize (on any M).


def newm(pp: P) -> M:
    m = M(len(sched.allm))
    m.gen = sched.generation
    m.p = pp
    pp.m = m
    sched.allm.append(m)
    return m


def mstart(m: M) -> None:
    m.ident = threading.get_ident()
    m.g0 = getcurrent()
    schedule_loop(m)


def _mthread(m: M) -> None:
    """The body of every M but M0."""
    try:
        mstart(m)
    finally:
        # An M that teardown abandoned (stuck in a blocking C call) may get
        # here during a later run: it must not touch that run's state.
        if not _stale(m):
            unwind_goroutines(m)
            with sched.lock:
                sched.mcount -= 1
                m.ident = 0
                set_multi()
                checkdead()  # the Ms left may all be asleep


def startm(pp: P) -> None:
    """Start a new M thread driving pp. Channels lock from now on."""
    with sched.lock:
        m = _allocm(pp)
    _spawnm(m)


def _allocm(pp: P) -> M:
    """A new M for pp, counted at once. sched.lock must be held."""
    m = newm(pp)
    sched.mcount += 1
    set_multi()
    return m


def _spawnm(m: M) -> None:
    t = threading.Thread(target=_mthread, args=(m,), name=f"gort-M{m.id}", daemon=True)
    m.thread = t
    t.start()


def procresize(n: int) -> None:
    """Change the number of Ps at run time (proc.go procresize).

    Growing revives retired Ps whose M still runs and adds new Ps, each
    with a new M. Shrinking marks the extra Ps dead at once: their unstarted
    goroutines go to the global queue and no new goroutine starts there,
    while the ones that have started finish on that P (a greenlet cannot
    change thread); the P's M ends, handing its timers on, once none is
    left (``_retire``). Everything that decides whether a P has an M
    happens under sched.lock, so a resize and a retiring M cannot both
    believe the other one drives the P.
    """
    started: list[M] = []
    with sched.lock:
        old = sched.gomaxprocs
        sched.gomaxprocs = n
        malloc.startrun()  # the allocation fast path's one-P shortcut is re-chosen
        for pp in sched.allp[n:old]:
            pp.status = P_DEAD
            _drain_unstarted(pp)
            if pp.m is not None:
                notewakeup(pp.m)
        for i in range(old, n):
            if i < len(sched.allp):
                pp = sched.allp[i]
            else:
                pp = P(i)
                sched.allp.append(pp)
            pp.status = P_RUNNING
            if pp.m is not None:
                notewakeup(pp.m)  # still finishing its goroutines: it carries on
            else:
                started.append(_allocm(pp))
    for m in started:
        _spawnm(m)


def _drain_unstarted(pp: P) -> None:
    """Move pp's unstarted Gs to the global queue (caller is not pp's M)."""
    q = pp.runq
    for _ in range(len(q)):
        try:
            gp = q.popleft()
        except IndexError:
            break
        (sched.runq if gp.glet is None else q).append(gp)
    if sched.runq:
        wakep()


def _findretired(m: M, pp: P) -> G | None:
    """findrunnable for a P that gomaxprocs removed: only the goroutines
    that started there run on it. None: the P retired, was revived, or the
    program is over."""
    while True:
        if sched.exiting or pp.status != P_DEAD:
            return None
        if pp.timers:
            _time.checktimers(pp)
        gp = runqget(pp)
        if gp is None:
            if _retire(pp):
                return None
            gp = stopm(m, pp)
            if gp is None:
                continue
        if gp.glet is not None:
            return gp
        sched.runq.append(gp)  # unstarted (a steal raced the resize): any live P
        wakep()


def _retire(pp: P) -> bool:
    """pp is dead and none of its goroutines is left: its M ends now and its
    live timers move to a live P (Go's (*p).destroy and moveTimers)."""
    with sched.lock:
        if pp.status != P_DEAD or not _retire_done(pp):
            return False
        freemcache(pp)  # on pp's own M, before a revival could give pp another
        pp.m = None  # type: ignore[assignment]  # from now on a gomaxprocs that revives pp starts a new M
        if pp.timers:
            gp = newproc1(_adopt_timers, (pp,), {})
            sched.runq.append(gp)
    wakep()
    return True


def _adopt_timers(dead: P) -> None:
    """A goroutine that moves a retired P's timers to the P it runs on: a
    heap is only ever touched by its owner M."""
    _time.movetimers(dead, getg("gort: adopt timers").p)


def unwind_goroutines(m: M) -> None:
    """Unwind this M's goroutines and idle greenlets, on this M's thread.

    Each goroutine gets GreenletExit once (``exitg`` abandons one that
    swallows it). A KeyboardInterrupt escaping a finally-block (a second
    Ctrl-C) stops the unwinding: the rest is abandoned and it propagates.
    """
    pp = m.p
    if pp is None:
        return
    mine = [gp for gp in list(sched.allgs.values()) if gp.p is pp and gp.glet is not None]
    for gp in mine:
        gl = gp.glet
        if gl is not None and not gl.dead and gp.goid not in sched.unwound:
            sched.unwound.add(gp.goid)
            _throw_exit(gl)
    while pp.gfree:
        gl = pp.gfree.pop()
        if not gl.dead:
            _throw_exit(gl)


def _throw_exit(gl: Any) -> None:
    try:
        gl.throw(GreenletExit)
    except KeyboardInterrupt:
        raise
    except BaseException:
        pass  # what an abandoned goroutine raises cannot change the outcome


# ---------------------------------------------------------------------------
# checkdead, panics and the end of the program.


def checkdead() -> None:
    """Declare a deadlock when no M runs and nothing could ever wake one.

    sched.lock must be held. Every M is idle, so none touches its P's
    queues or timer heap while this looks at them: an M that wakes takes
    sched.lock before anything else.
    """
    if sched.exiting or sched.nmidle < sched.mcount:
        return
    if sched.nsyscall > 0 or sched.runq:
        return
    for pp in sched.allp:
        if pp.runnext is not None or pp.runq:
            return
        if _time.has_timers(pp):
            return
    if sched.netpoll_waiters():
        return
    if sched.signals is not None and sched.signals.watching():
        return  # a notified signal can still wake a goroutine (Go: signal_recv's M)
    if any(f() for f in sched.may_wake):
        return
    if any(t.is_alive() for t in list(sched.cgothreads.values())):
        return  # a thread that is not an M may send again (Go: cgo's extra M)
    if sched.allgs:
        msg = "all goroutines are asleep - deadlock!"
    else:
        msg = "no goroutines (main called runtime.Goexit) - deadlock!"
    _flush_stdout()
    text = f"fatal error: {msg}\n"
    if sched.debug.traceback != "none" and sched.allgs:
        text += "\n" + dump_all() + "\n"
    _report_crash(text)
    _exit_locked("deadlock", msg)


def gopanic(gp: G, exc: BaseException) -> None:
    """An exception escaped gp: print it Go's way and end the program."""
    if isinstance(exc, SystemExit):
        exitprogram("exit", exc.code)
        return
    if isinstance(exc, KeyboardInterrupt):
        exitprogram("interrupt", exc)
        return
    with sched.lock:
        if sched.exiting or sched.panicking:
            return  # another goroutine's panic is already ending the program
        sched.panicking = True  # main waits from now on (runtime.main's panicwait)
    try:
        _flush_stdout()
        _report_crash(_panic_text(gp, exc))
    finally:
        exitprogram("panic", exc)  # whatever the user's __str__ or __repr__ did


def _panic_text(gp: G, exc: BaseException) -> str:
    """The report of an unrecovered panic; never raises (user code runs here)."""
    text = f"panic: {panic_message(exc)}\n"
    try:
        mode = sched.debug.traceback
        if mode != "none":
            text += "\n" + format_panic(gp, exc) + "\n"
            if mode == "all":
                others = dump_all(skip=gp)
                if others:
                    text += "\n" + others + "\n"
    except Exception as e:
        text += f"\n(gort: the traceback could not be formatted: {type(e).__name__})\n"
    return text


def fatal(msg: str) -> NoReturn:
    """Go's fatal: a misuse the program cannot recover from (package sync's
    ``unlock of unlocked mutex``). Prints ``fatal error: msg`` and every
    goroutine, ends the program (run raises gort.Fatal(msg)), and unwinds
    the calling goroutine. Unlike a panic, ``except`` cannot stop it."""
    with sched.lock:
        first = not (sched.exiting or sched.panicking)
        sched.panicking = True
    if first:
        _flush_stdout()
        text = f"fatal error: {msg}\n"
        if sched.debug.traceback != "none":
            text += "\n" + dump_all() + "\n"
        _write_stderr(text)
        exitprogram("fatal", msg)
    raise GreenletExit


def _flush_stdout() -> None:
    try:
        sys.stdout.flush()
    except Exception:
        pass


def _report_crash(text: str) -> None:
    """Print a panic's or fatal error's report (or hand it to on_crash)."""
    if sched.seed is not None:
        text += f"\ngort: scheduler seed {sched.seed} (GORT_SCHEDSEED={sched.seed} replays it)\n"
    hook = sched.on_crash
    if hook is None or not hook(text):
        _write_stderr(text)


def _write_stderr(text: str) -> None:
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except Exception:
        pass


def _exit_locked(kind: str, value: Any) -> bool:
    """Record how the program ends and wake every M. sched.lock must be held."""
    if sched.exiting:
        return False
    if kind == "return" and sched.panicking:
        return False  # a panic is being reported: it ends the program, not main
    sched.exiting = True
    sched.exit_kind = kind
    sched.exit_value = value
    for pp in sched.allp:
        pp.preempt = True  # sends every schedule() to its slow path, which sees the end
    for m in sched.allm:
        m.park.wakeup()
    brk = sched.netpoll_break
    if brk is not None:
        brk()  # the M blocked in the poller
    hook = sched.on_exit
    if hook is not None:
        hook()
    return True


def exitprogram(kind: str, value: Any) -> bool:
    with sched.lock:
        return _exit_locked(kind, value)


def main_result() -> Any:
    """What run() returns or raises, once the program is over."""
    kind, value = sched.exit_kind, sched.exit_value
    if kind == "return":
        return value
    if kind == "exit":
        raise SystemExit(value)
    if kind == "deadlock":
        raise Deadlock(value)
    if kind == "fatal":
        raise Fatal(value)
    if kind == "interrupt":
        raise KeyboardInterrupt from None
    if kind == "panic":
        raise Panic(panic_message(value) if not isinstance(value, Panic) else str(value)) from value
    raise RuntimeError(f"gort: program ended without a result ({kind!r})")


def set_multi() -> None:
    """Channels lock only while more than one M runs goroutines."""
    sched.multi = sched.mcount > 1


def _env_default_procs() -> int:
    env = os.environ.get("GOMAXPROCS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    return 1 if gil else (os.cpu_count() or 1)


def gomaxprocs(n: int | None = None) -> int:
    """Read GOMAXPROCS, or set it and return the previous value.

    Outside a run it reads what a run would start with ($GOMAXPROCS or the
    default); setting it there is an error (use ``run(procs=)``).
    """
    if n is not None and (not isinstance(n, int) or isinstance(n, bool)):
        raise TypeError(f"gort.gomaxprocs: n must be an int, not {n!r}")
    if not sched.running:
        if n is not None and n > 0:
            raise outside("gort.gomaxprocs(n)")
        return _env_default_procs()
    prev = sched.gomaxprocs
    if n is None or n < 1 or n == prev:
        return prev
    getg("gort.gomaxprocs")
    procresize(n)
    return prev


def init(fn: Callable[[], Any]) -> Callable[[], Any]:
    """``@gort.init``: run fn before main, in registration order."""
    _init_funcs.append(fn)
    return fn


def check_not_running(call: str) -> None:
    if current_g() is not None:
        raise RuntimeError(f"{call} called from inside a goroutine")


_trace.hot(schedule, ready, ready_remote, gosched, goexit0, newproc)
