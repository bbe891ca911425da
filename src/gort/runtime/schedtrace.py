"""GODEBUG=schedtrace=MS and scheddetail=1 (proc.go: schedtrace).

Go's line, field for field, so that tools and eyes trained on Go read it::

    SCHED 1004ms: gomaxprocs=1 idleprocs=0 threads=4 spinningthreads=0 idlethreads=1 runqueue=0 [3]

``threads`` counts every M: those that drive Ps, sysmon, and the helper Ms
of ``gort.syscall``; ``idlethreads`` the ones asleep. The bracket holds each
P's local run queue length (``runnext`` included). No M spins in gort (an
idle M looks for work once, stealing included, then sleeps until woken), so
the spinning fields are always 0 and false.

scheddetail=1 adds, after the header, a ``heap:`` line with gort.alloc's
figures under their MemStats names (Go prints those with gctrace instead).
"""

from __future__ import annotations

from time import monotonic

from .runtime2 import G_RUNNING, P_DEAD, P_IDLE, G, P, sched
from .traceback import status_string


def _p_idle(pp: P) -> bool:
    m = pp.m
    return m is None or m.parked or not m.ident


def _runqsize(pp: P) -> int:
    return len(pp.runq) + (pp.runnext is not None)


def line(now: float | None = None) -> str:
    now = monotonic() if now is None else now
    ms = int((now - sched.starttime) * 1000)
    live = [pp for pp in sched.allp if pp.status != P_DEAD]
    pms = [pp.m for pp in sched.allp if pp.m is not None and pp.m.ident]
    helpers = sched.syscalls
    nhelpers = helpers.nthreads if helpers is not None else 0
    idlehelpers = helpers.nidle if helpers is not None else 0
    threads = len(pms) + nhelpers + (1 if sched.sysmon is not None else 0)
    idlethreads = sum(1 for m in pms if m.parked) + idlehelpers
    sizes = " ".join(str(_runqsize(pp)) for pp in live)
    return (
        f"SCHED {ms}ms: gomaxprocs={sched.gomaxprocs} "
        f"idleprocs={sum(1 for pp in live if _p_idle(pp))} threads={threads} "
        f"spinningthreads=0 idlethreads={idlethreads} "
        f"runqueue={len(sched.runq)} [{sizes}]"
    )


def _heap_line() -> str:
    """gort.alloc's heap, in MemStats' words (bytes)."""
    from .mstats import read_mem_stats

    s = read_mem_stats()
    return (
        f"  heap: heap_sys={s.heap_sys} heap_inuse={s.heap_inuse} heap_idle={s.heap_idle} "
        f"heap_released={s.heap_released} heap_objects={s.heap_objects} "
        f"mallocs={s.mallocs} frees={s.frees} finalizer_frees={s.finalizer_frees}"
    )


def detail(now: float | None = None) -> str:
    """The scheddetail=1 block: the header, then every P, M and G."""
    head = line(now).split(" [", 1)[0]
    sysmonwait = str(sched.sysmonwait).lower()
    lines = [f"{head} gcwaiting=false nmidlelocked=0 stopwait=0 sysmonwait={sysmonwait}"]
    lines.append(_heap_line())
    for pp in sched.allp:
        mid = pp.m.id if pp.m is not None else -1
        # A P whose M sleeps is idle (Go's _Pidle), though gort keeps the pair.
        status = P_IDLE if pp.status != P_DEAD and _p_idle(pp) else pp.status
        lines.append(
            f"  P{pp.id}: status={status} schedtick={pp.schedtick} "
            f"syscalltick={pp.syscalltick} m={mid} runqsize={_runqsize(pp)} "
            f"gfreecnt={len(pp.gfree)} timerslen={len(pp.timers)}"
        )
    running = {gp.p: gp.goid for gp in list(sched.allgs.values()) if gp.status == G_RUNNING}
    for m in sched.allm:
        pid = m.p.id if m.p is not None else -1
        curg = running.get(m.p, -1) if m.p is not None else -1
        lines.append(
            f"  M{m.id}: p={pid} curg={curg} mallocing=0 throwing=0 preemptoff= locks=0 "
            f"dying=0 spinning=false blocked={str(m.parked).lower()} "
            f"lockedg=-1"
        )
    for goid in sorted(sched.allgs):
        gp: G = sched.allgs[goid]
        # Go's gp.m: the M running it, so only a running G has one.
        gm = gp.p.m if gp.status == G_RUNNING and gp.p is not None else None
        mid = gm.id if gm is not None else -1
        lines.append(f"  G{goid}: status={gp.status}({status_string(gp)}) m={mid} lockedm=-1")
    return "\n".join(lines)
