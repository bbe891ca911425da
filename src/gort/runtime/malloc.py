"""gort.alloc: Go's allocator for I/O buffers (malloc.go).

Allocating a small buffer (at most 32 KiB) climbs Go's hierarchy of caches:

1. round the size up to its size class and take a free slot of the span
   that this P's mcache holds for the class: no lock;
2. if that span is full, swap it for a span with free slots from the
   class's mcentral (one lock per span, not per buffer);
3. if the mcentral has none, it cuts a new span from the heap's pages;
4. if the heap has no free pages, it grows into its arena (mmap).

A large buffer (over 32 KiB) is a span of its own, straight from the heap.

**A Buffer object per slot.** Go's slots are fixed places in a span; so
are gort's Buffer objects: a slot's Buffer (its ``view`` over the slot's
bytes, not zeroed unless ``zero=True``) is made on the slot's first
allocation, and every later allocation of the slot hands out the same
object again. Freeing changes the object's class to ``_FreedBuffer``,
whose every use (``view``, ``len``, ``with``, a second ``free``) is a fatal
error, and queues it on its span (``span.free``); allocating pops it and
changes its class back. The fast path is one function call, one
``popleft``, three checks and the class change; ``free`` is the class
change, a count and an ``append``: no object is made, no view sliced.

**A stale reference never sees its Buffer come back to life.** An object
that is handed out again must not be reachable from code that kept it
after freeing it, or that code's second free (or use) would hit the new
owner's buffer. So allocation hands out a queued Buffer only if the queue
held the last reference to it (``sys.getrefcount``, calibrated at
import); a Buffer that something still references stays freed, and the
slot is handed out through another object: its alternate (``_alt``) if
nothing references that one, else a new object (which is what a
generation stamp per handle did, paid for only when a reference is
actually kept). The usual holder is the variable that held the last
buffer (``with conn.read_buffer(n) as buf`` in a loop), so a slot's two
objects take turns. The queues are FIFO, so that such a variable has
usually let go of a Buffer before it comes round again.

**Which mcache.** Finding the current P (``getcurrent().gp.p.mcache``)
would cost as much as the rest of the fast path, so the fast path pops
from ``_fast``: the mcache lists of P0 while the program has one P, and of
``mcache0`` outside a run. With more Ps ``_fast`` is None and the fast
path takes the lists of the thread's P from a thread-local (``_m``; a P's
M is one thread for its whole life), set by the first allocation on that
M; a cache released since has only empty queues, so the next allocation
falls to ``_alloc_slow`` and finds the P's new one. Another thread that
allocates through ``_fast`` meanwhile (a helper M in a syscall, a thread
of the program's own) only pops: loading a queue and popping it is one
step for other threads (CPython 3.11 has no thread switch between them),
and only the owner refills (see mcache.py).

A Buffer that is dropped without ``free()`` is freed through its finalizer
(queued, see mfinal.py) and counted in ``mem_stats().finalizer_frees``: a
leak made visible, not a crash. Memoryviews taken from ``view`` (slices,
``bytes(view)`` aside) are plain pointers into the arena: like a pointer
kept past ``free`` in C, they must not be used after it.

Counting: ``span.nfree += 1`` is three bytecodes that CPython 3.11 does not
interleave with another thread (it switches threads only at calls and
backward jumps); mem_stats derives mallocs from it (see mstats.py).
"""

from __future__ import annotations

import ctypes
import sys
import threading
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Any, NoReturn

from greenlet import getcurrent

from .mcache import MCache, freemcache, mcache0, mcache0_lock
from .mfinal import finq, runfinq
from .mgcscavenge import scavenge_all
from .mheap import MSpan, mheap_
from .panic import Fatal
from .runtime2 import sched
from .sizeclasses import (
    LARGE_SIZE_DIV,
    MAX_SMALL_SIZE,
    PAGE_SHIFT,
    PAGE_SIZE,
    SMALL_SIZE_DIV,
    SMALL_SIZE_MAX,
    size_to_class8,
    size_to_class128,
)


def _class_table() -> list[int]:
    """The size class of every size 0..32 KiB: one index on the fast path."""
    table = []
    for n in range(MAX_SMALL_SIZE + 1):
        size = max(n, 1)  # alloc(0) takes the smallest class
        if size <= SMALL_SIZE_MAX - 8:
            table.append(size_to_class8[(size + SMALL_SIZE_DIV - 1) // SMALL_SIZE_DIV])
        else:
            table.append(
                size_to_class128[(size - SMALL_SIZE_MAX + LARGE_SIZE_DIV - 1) // LARGE_SIZE_DIV]
            )
    return table


_class_of = _class_table()
_large_cache = mheap_.large_cache
_getrefcount = sys.getrefcount


def _double_free() -> NoReturn:
    raise Fatal("runtime: double free")


def _use_after_free(*args: Any) -> NoReturn:
    raise Fatal("runtime: use of a freed buffer")


class Buffer:
    """A buffer from gort.alloc: ``view``, ``len()``, ``free()``, ``with``.

    A live buffer is a ``_LiveBuffer``; ``free()`` turns it into a
    ``_FreedBuffer`` (same slots, a class assignment), whose every use is a
    fatal error and which has no finalizer.
    """

    __slots__ = ("_alt", "_full", "_len", "_slot", "_span", "view")

    view: memoryview  # _full, or _full[:_len] when fewer bytes were asked for
    _full: memoryview  # the slot's bytes (elemsize)
    _len: int
    _span: MSpan
    _slot: int
    _alt: Buffer | None  # another (freed) object of the same slot, see _unreferenced

    # free() returns the buffer to the allocator; it cannot be used afterwards.
    # Each concrete class (_LiveBuffer, _FreedBuffer) defines it.
    free: Callable[..., None]

    def __len__(self) -> int:
        return self._len

    def __buffer__(self, flags: int) -> memoryview:  # PEP 688 (Python 3.12+)
        return self.view

    def __enter__(self) -> Buffer:
        return self

    def __exit__(
        self,
        tp: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.free()

    def _shorten(self, n: int) -> None:
        """Keep only the first n bytes (a read that got fewer)."""
        self.view = self.view[:n]
        self._len = n

    def __repr__(self) -> str:
        return f"<gort.Buffer {self._len} bytes, size class {self._span.sizeclass}>"


class _LiveBuffer(Buffer):
    __slots__ = ()

    def free(self, *_exc: object) -> None:
        self.__class__ = _FreedBuffer  # type: ignore[assignment]
        span = self._span
        span.nfree += 1
        if span.mcache is not None:
            span.free.append(self)  # the holder's next alloc may take it
        else:
            span.central.free_uncached(span, self)

    __exit__ = free  # one call fewer at the end of a with block (the hot path of reads)

    def __del__(self) -> None:
        try:
            finq.append((self._span, self._slot, self._full))  # freed by runfinq
        except Exception:  # half-made, or the interpreter is shutting down
            pass


class _FreedBuffer(Buffer):
    """A Buffer after free(): every use raises gort.Fatal."""

    __slots__ = ()

    view = property(_use_after_free)
    __len__ = __buffer__ = __enter__ = _use_after_free

    def free(self) -> None:
        _double_free()

    def __repr__(self) -> str:
        return "<gort.Buffer (freed)>"


for _cls in (_LiveBuffer, _FreedBuffer):
    _cls.__name__ = _cls.__qualname__ = "Buffer"


_new = object.__new__


def newbuffer(span: MSpan, slot: int, full: memoryview) -> Buffer:
    """A new (freed) Buffer object for a slot whose bytes are full."""
    b = _new(_FreedBuffer)
    b._span = span
    b._slot = slot
    b._full = full
    _set_view(b, full)  # the slot under _FreedBuffer's property
    b._len = len(full)
    b._alt = None
    return b


_set_view = Buffer.__dict__["view"].__set__


def _rc_calibrate() -> tuple[int, int, int, int]:
    """sys.getrefcount of a Buffer that only the allocator references, in the
    places it is checked: popped into a local of the checking function,
    passed straight to it, held by a caller's local too, and an alternate
    (referenced by its slot's other object) in a local."""

    def passed(b: object) -> int:
        return _getrefcount(b)

    def alternate(h: Any) -> int:
        a = h._alt
        return _getrefcount(a)

    class Holder:
        _alt: object = None

    h = Holder()
    h._alt = object()
    q: deque[object] = deque([object(), object()])
    b = q.popleft()
    local = _getrefcount(b)
    return local, passed(q.popleft()), passed(b), alternate(h)


_RC_LOCAL, _RC_PASSED, _RC_CALLER, _RC_ALT = _rc_calibrate()

_fast: list[deque[Buffer]] | None = mcache0.lists  # see the module's docstring


class _MLocal(threading.local):
    lists: list[deque[Buffer]]  # the mcache lists of this thread's P, with several Ps


_m = _MLocal()


def alloc(n: int, zero: bool = False) -> Buffer:
    """A Buffer of n bytes (gort.alloc). Not zeroed unless zero is true."""
    try:
        b = (_fast or _m.lists)[_class_of[n]].popleft() if n <= MAX_SMALL_SIZE else None
    except (IndexError, TypeError, AttributeError):  # none queued, no mcache yet, or a bad n
        return _alloc_slow(n, zero)
    if b is None:
        return _alloc_large(n, zero)
    if _getrefcount(b) != _RC_LOCAL:  # kept by someone: take the slot's alternate
        a = b._alt
        if a is None or _getrefcount(a) != _RC_ALT:
            return _retake(b, n, zero)
        b._alt = None
        a._alt = b
        b = a
    if n != b._len or zero:
        return _retake(b, n, zero)
    b.__class__ = _LiveBuffer
    return b


def _retake(b: Buffer, n: int, zero: bool) -> Buffer:
    """The fast path's b needs more than its class changed: another length
    than last time, zeroing, a new object for its slot, or n < 0."""
    if n < 0:
        b._span.free.appendleft(b)  # the slot stays free
        raise ValueError(f"gort.alloc: negative size {n}")
    if _getrefcount(b) != _RC_CALLER:
        b = _unreferenced(b)
    return _ready(b, n, zero)


def _unreferenced(b: Buffer) -> Buffer:
    """A free Buffer object for b's slot that nothing references: b's
    alternate if that one is, else a new one (whose alternate b becomes).

    b is referenced elsewhere: usually by the variable that held it, which
    lets go when the next read rebinds it. So a slot whose Buffer is kept
    like that has two objects taking turns, each the other's alternate
    while it is handed out, and no object is made per allocation.
    """
    a = b._alt
    if a is not None and _getrefcount(a) == _RC_ALT:
        b._alt = None
        a._alt = b
        return a
    b._alt = None  # a slot keeps two objects at most
    a = newbuffer(b._span, b._slot, b._full)
    a._alt = b
    return a


def _take(b: Buffer, n: int, zero: bool) -> Buffer:
    """A Buffer taken from a queue outside the fast path, made n bytes long and live."""
    if _getrefcount(b) != _RC_PASSED:
        b = newbuffer(b._span, b._slot, b._full)
    return _ready(b, n, zero)


def _ready(b: Buffer, n: int, zero: bool) -> Buffer:
    """b, only the allocator's, made n bytes long (zeroed if asked) and live."""
    b.__class__ = _LiveBuffer
    if n != b._len:
        b.view = b._full if n == len(b._full) else b._full[:n]
        b._len = n
    if zero:
        _memclr(b.view)
    return b


def _memclr(view: memoryview) -> None:
    n = len(view)
    if n:
        ctypes.memset(ctypes.addressof(ctypes.c_char.from_buffer(view)), 0, n)


def nextfree(mc: MCache, sizeclass: int) -> Buffer:
    """A free Buffer of the class: queued, else a slot the cached span never
    used (its Buffer made now), else from a refilled span (mcache.nextFree)."""
    span = mc.alloc[sizeclass]
    while True:
        try:
            b: Buffer = span.free.popleft()
            return b
        except IndexError:
            pass
        slot = span.freeindex
        if slot < span.nelems:
            span.freeindex = slot + 1
            return newbuffer(span, slot, span.slotview(slot))
        span = mc.refill(sizeclass)


def _alloc_slow(n: int, zero: bool) -> Buffer:
    """Everything the fast path does not do: a large n, a small one on the
    caller's own mcache (mcache0 under its lock on no P), or a bad one."""
    global _fast
    if not isinstance(n, int):
        raise TypeError(f"gort.alloc: size must be an int, not {type(n).__name__}")
    if n < 0:
        raise ValueError(f"gort.alloc: negative size {n}")
    if n > MAX_SMALL_SIZE:
        return _alloc_large(n, zero)
    sc = _class_of[n]
    gp = getattr(getcurrent(), "gp", None)
    pp = gp.p if gp is not None else None
    if pp is None:
        with mcache0_lock:
            return _take(nextfree(mcache0, sc), n, zero)
    mc = pp.mcache
    if mc is None:
        mc = pp.mcache = MCache()
    if sched.gomaxprocs == 1 and pp is sched.allp[0]:
        _fast = mc.lists
    else:
        _fast = None
        _m.lists = mc.lists  # this thread is pp's M for good
    return _take(nextfree(mc, sc), n, zero)


def _alloc_large(n: int, zero: bool) -> Buffer:
    """A span of its own: a kept one of the same size (its Buffer queued on
    it), or a new one from the heap."""
    npages = (n + PAGE_SIZE - 1) >> PAGE_SHIFT
    try:
        b: Buffer = _large_cache[npages].pop().free.popleft()  # IndexError: none kept, or too large
    except IndexError:
        span = mheap_.alloc_large(npages)
        span.freeindex = 1
        return _ready(newbuffer(span, 0, span.slotview(0)), n, zero)
    if _getrefcount(b) != _RC_LOCAL:
        b = _unreferenced(b)
    if n != b._len or zero:
        return _ready(b, n, zero)
    b.__class__ = _LiveBuffer
    return b


def startrun() -> None:
    """A run starts, or its number of Ps changes: the next allocation on a
    P picks ``_fast`` again."""
    global _fast
    _fast = None


def endrun() -> None:
    """The run is over and no M runs: free every P's mcache, then return
    every free page to the OS. The heap itself, and any Buffer the program
    kept, live on: Go's heap lives as long as the process, and so does
    gort's (its arenas are address space, not memory, once released)."""
    global _fast
    runfinq()
    for pp in sched.allp:
        freemcache(pp)
    _fast = mcache0.lists
    scavenge_all()
