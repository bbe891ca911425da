"""gort.alloc: Go's allocator for I/O buffers (malloc.go).

Allocating a small buffer (at most 32 KiB) climbs Go's hierarchy of caches:

1. round the size up to its size class and pop a free slot from the span
   that this P's mcache holds for the class: no lock;
2. if that span is full, swap it for a span with free slots from the
   class's mcentral (one lock per span, not per buffer);
3. if the mcentral has none, it cuts a new span from the heap's pages;
4. if the heap has no free pages, it grows into its arena (mmap).

A large buffer (over 32 KiB) is a span of its own, straight from the heap.

A ``Buffer`` is the handle: ``view`` is a memoryview of the buffer's bytes
in the arena, not zeroed unless ``zero=True`` (a read overwrites them
anyway). ``free()`` returns the slot: lock-free while some mcache holds the
span (one atomic ``list.append``), through the mcentral's lock otherwise.
Each slot has a generation stamp that every free moves on; a Buffer keeps
the stamp it was allocated under, so freeing it twice is caught even after
the slot has been handed out again, and a freed Buffer has no ``view``
any more: both are fatal errors, as heap corruption is in Go.

A Buffer that is dropped without ``free()`` is freed through its finalizer
(queued, see mfinal.py) and counted in ``mem_stats().finalizer_frees``: a leak made visible, not a
crash. Memoryviews taken from ``view`` (slices, ``bytes(view)`` aside) are
plain pointers into the arena: like a pointer kept past ``free`` in C,
they must not be used after it.

Outside a running program (no P: before or after ``gort.run``, or on a
thread the runtime did not start) allocation uses ``mcache0`` under a lock.
"""

from __future__ import annotations

import ctypes
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
    """Size class of every size rounded up to 8 bytes: one index on the hot path."""
    table = []
    for i in range(MAX_SMALL_SIZE // SMALL_SIZE_DIV + 1):
        size = max(i * SMALL_SIZE_DIV, 1)  # alloc(0) takes the smallest class
        if size <= SMALL_SIZE_MAX - 8:
            table.append(size_to_class8[(size + SMALL_SIZE_DIV - 1) // SMALL_SIZE_DIV])
        else:
            table.append(
                size_to_class128[(size - SMALL_SIZE_MAX + LARGE_SIZE_DIV - 1) // LARGE_SIZE_DIV]
            )
    return table


_class_of = _class_table()
_large_cache = mheap_.large_cache


def _double_free() -> NoReturn:
    raise Fatal("runtime: double free")


def _use_after_free(*args: Any) -> NoReturn:
    raise Fatal("runtime: use of a freed buffer")


class Buffer:
    """A buffer from gort.alloc: ``view``, ``len()``, ``free()``, ``with``.

    A live buffer is a ``_LiveBuffer``; ``free()`` turns it into a
    ``_FreedBuffer`` (same slots, a class assignment), whose every use is a
    fatal error and which needs no finalizer: so the finalizer of a freed
    buffer costs nothing when it is dropped.
    """

    __slots__ = ("_gen", "_slot", "_span", "view")

    view: memoryview
    _span: MSpan
    _slot: int
    _gen: int

    def free(self) -> None:
        """Return the buffer to the allocator. It cannot be used afterwards."""
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.view)

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

    def __repr__(self) -> str:
        return f"<gort.Buffer {len(self.view)} bytes, size class {self._span.sizeclass}>"


class _LiveBuffer(Buffer):
    __slots__ = ()

    def free(self, *_exc: object) -> None:
        span = self._span
        slot = self._slot
        gens = span.gens
        gen = self._gen
        if gens[slot] != gen:
            _double_free()  # a stale handle: the slot was freed since
        gens[slot] = gen + 1
        self.__class__ = _FreedBuffer  # type: ignore[assignment]
        if span.mcache is not None:
            span.freelist.append(slot)  # the holder's next alloc may take it
        else:
            span.central.free_uncached(span, slot)

    __exit__ = free  # one call fewer at the end of a with block (the hot path of reads)

    def __del__(self) -> None:
        try:
            span = self._span
            slot = self._slot
            gen = self._gen
            if span.gens[slot] == gen:
                finq.append((span, slot, gen))  # freed by runfinq, where no lock is held
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


def alloc(n: int, zero: bool = False) -> Buffer:
    """A Buffer of n bytes (gort.alloc). Not zeroed unless zero is true."""
    try:
        if n > MAX_SMALL_SIZE:
            return _alloc_large(n, zero)
        mc: MCache = getcurrent().gp.p.mcache
        sc = _class_of[(n + 7) >> 3]
        span = mc.alloc[sc]
    except (AttributeError, IndexError, TypeError):
        return _alloc_slow(n, zero)  # no P or no mcache yet, or a bad n
    try:
        slot = span.freelist.pop()
    except IndexError:
        span = mc.refill(sc)
        slot = span.freelist.pop()
    view = span.views[slot]
    if view is None or n != span.elemsize or zero:
        b = _buffer(span, slot, n, zero)  # the general case of what follows
    else:
        b = _new(_LiveBuffer)
        b.view = view
        b._span = span
        b._slot = slot
        b._gen = span.gens[slot]
    return b


def _buffer(span: MSpan, slot: int, n: int, zero: bool) -> Buffer:
    view = span.views[slot]
    if view is None:
        view = span.makeview(slot)
    if n != span.elemsize:
        if n < 0:
            span.freelist.append(slot)
            raise ValueError(f"gort.alloc: negative size {n}")
        view = view[:n]
    b = _new(_LiveBuffer)
    b.view = view
    b._span = span
    b._slot = slot
    b._gen = span.gens[slot]
    if zero:
        _memclr(view)
    return b


def _memclr(view: memoryview) -> None:
    n = len(view)
    if n:
        ctypes.memset(ctypes.addressof(ctypes.c_char.from_buffer(view)), 0, n)


def _alloc_slow(n: int, zero: bool) -> Buffer:
    """Everything but a small allocation on a P whose mcache exists."""
    if not isinstance(n, int):
        raise TypeError(f"gort.alloc: size must be an int, not {type(n).__name__}")
    if n < 0:
        raise ValueError(f"gort.alloc: negative size {n}")
    if n > MAX_SMALL_SIZE:
        return _alloc_large(n, zero)
    sc = _class_of[(n + 7) >> 3]
    gp = getattr(getcurrent(), "gp", None)
    pp = gp.p if gp is not None else None
    if pp is None:
        with mcache0_lock:
            span = mcache0.alloc[sc]
            if not span.freelist:
                span = mcache0.refill(sc)
            slot = span.freelist.pop()
            b = _buffer(span, slot, n, zero)
        return b
    if pp.mcache is None:
        pp.mcache = MCache()
    return alloc(n, zero)


def _alloc_large(n: int, zero: bool) -> Buffer:
    if not isinstance(n, int):
        raise TypeError(f"gort.alloc: size must be an int, not {type(n).__name__}")
    npages = (n + PAGE_SIZE - 1) >> PAGE_SHIFT
    try:
        span = _large_cache[npages].pop()  # IndexError: none kept, or too large to keep
    except IndexError:
        span = mheap_.alloc_large(npages)
    b = _new(_LiveBuffer)
    view = span.views[0]
    if view is None:
        view = span.makeview(0)
    b.view = view if n == span.elemsize else view[:n]
    b._span = span
    b._slot = 0
    b._gen = span.gens[0]
    if zero:
        _memclr(b.view)
    return b


def endrun() -> None:
    """The run is over and no M runs: free every P's mcache, then return
    every free page to the OS. The heap itself, and any Buffer the program
    kept, live on: Go's heap lives as long as the process, and so does
    gort's (its arenas are address space, not memory, once released)."""
    runfinq()
    for pp in sched.allp:
        freemcache(pp)
    scavenge_all()
