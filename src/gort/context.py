"""Go's package context: cancellation, deadlines and request values.

Mirrors context/context.go. A Context is a tree: ``background()`` at the
root, each ``with_*`` call adding a child. Cancelling a node cancels every
descendant and detaches them; a node that is cancelled on its own (its
cancel function, its deadline) removes itself from its parent. So a parent
never keeps references to children that are done, and a cancelled parent
keeps none at all: a long-lived parent does not leak the short-lived
requests made under it (the "no leak" tests check this with weakrefs).

Invariants, all under ``_mu``:

* ``c._err`` goes from None to Canceled/DeadlineExceeded once and never back;
  ``c._cause`` is set with it.
* ``c._children`` holds the live cancellable children registered with c;
  it is None once c is cancelled (nothing can register any more: a child
  made under a cancelled parent is cancelled at once).
* ``c._done`` is made on first use; a node cancelled before anyone asked
  for it gets the shared closed channel instead of a new one.

One lock for every context (``_mu``) rather than one per node, as in Go:
cancelling a tree then takes it once, and contexts are not a hot spot for
contention. ``_mu`` is a thread lock, held only for field updates: nothing
that can park or yield (closing a channel, starting a goroutine or a timer)
runs while it is held; those are collected and done after it is released.
The whole tree is walked with an explicit stack, not by recursion, so a
chain thousands of contexts deep cancels without hitting the recursion
limit.

Deadlines use the runtime's timers (``gort.after_func``): a timer goroutine
cancels the context with DeadlineExceeded, and cancelling first stops the
timer and unhooks the context from it, so a stopped timer's heap entry
keeps nothing alive.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, cast

from .runtime.chan import Chan, nilchan
from .runtime.panic import Panic
from .runtime.proc import newproc
from .runtime.select import select
from .sleep import Timer, now

__all__ = [
    "CancelCauseFunc",
    "CancelFunc",
    "Canceled",
    "Context",
    "DeadlineExceeded",
    "background",
    "cause",
    "context_after_func",
    "todo",
    "with_cancel",
    "with_cancel_cause",
    "with_deadline",
    "with_deadline_cause",
    "with_timeout",
    "with_timeout_cause",
    "with_value",
    "without_cancel",
]


class _ErrorValue(type):
    """The metaclass of Canceled and DeadlineExceeded.

    Go's context errors are values compared with ``==``; Python code also
    wants to ``raise`` and ``except`` them. So they are classes (catchable,
    raisable, compared with ``is``) whose ``str()`` is Go's text, as the
    values' is in Go: ``str(gort.Canceled) == "context canceled"``.
    """

    _text: str

    def __str__(cls) -> str:
        return cls._text

    def __repr__(cls) -> str:
        return f"gort.{cls.__name__}"


class Canceled(Exception, metaclass=_ErrorValue):
    """Go's context.Canceled: ``ctx.err()`` after its cancel function ran."""

    _text: ClassVar[str] = "context canceled"

    def __init__(self, *args: object) -> None:
        super().__init__(*(args or (self._text,)))


class DeadlineExceeded(TimeoutError, metaclass=_ErrorValue):
    """Go's context.DeadlineExceeded: ``ctx.err()`` after its deadline passed."""

    _text: ClassVar[str] = "context deadline exceeded"

    def __init__(self, *args: object) -> None:
        super().__init__(*(args or (self._text,)))


# What err() returns: None, or one of the two error classes.
ContextError = type[Canceled] | type[DeadlineExceeded]
CancelFunc = Callable[[], None]
CancelCauseFunc = Callable[[BaseException | None], None]

_mu = threading.Lock()  # every context's mutable fields (see the module doc)

_closedchan = Chan()
_closedchan.close()  # the done channel of a context cancelled before done() was asked

_cancel_ctx_key = object()  # value() of this key finds the nearest cancelCtx (Go's cancelCtxKey)


class Context(ABC):
    """Go's context.Context interface; subclass it for a custom context.

    ``deadline()`` is the point in time (``gort.now()`` clock) when the
    context is cancelled, or None; ``done()`` is a channel closed when it is
    cancelled (``gort.nilchan`` if it never can be); ``err()`` is None until
    then, and Canceled or DeadlineExceeded after; ``value(key)`` finds the
    value stored for key by ``with_value`` in this context or an ancestor.
    """

    __slots__ = ()

    @abstractmethod
    def deadline(self) -> float | None: ...

    @abstractmethod
    def done(self) -> Chan: ...

    @abstractmethod
    def err(self) -> ContextError | None: ...

    @abstractmethod
    def value(self, key: Any) -> Any: ...


class _EmptyCtx(Context):
    """background() and todo(): never cancelled, no values, no deadline."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name

    def deadline(self) -> float | None:
        return None

    def done(self) -> Chan:
        return nilchan

    def err(self) -> ContextError | None:
        return None

    def value(self, key: Any) -> Any:
        return None


_background = _EmptyCtx("context.Background")
_todo = _EmptyCtx("context.TODO")


def background() -> Context:
    """The root of every context tree: never cancelled, no values, no deadline."""
    return _background


def todo() -> Context:
    """Like background(), for code that does not know yet which context to use."""
    return _todo


def _value(ctx: Context, key: Any) -> Any:
    """Go's value(): walk up through gort's own contexts without recursion."""
    while True:
        t = type(ctx)
        if t is _ValueCtx:
            vc = cast(_ValueCtx, ctx)
            if vc._key == key:
                return vc._val
            ctx = vc._parent
        elif t is _CancelCtx or t is _TimerCtx or t is _AfterFuncCtx:
            cc = cast(_CancelCtx, ctx)
            if key is _cancel_ctx_key:
                return cc
            ctx = cc._parent
        elif t is _WithoutCancelCtx:
            if key is _cancel_ctx_key:
                return None
            ctx = cast(_WithoutCancelCtx, ctx)._parent
        else:
            return ctx.value(key)


class _CancelCtx(Context):
    """A context that can be cancelled (Go's cancelCtx)."""

    __slots__ = ("__weakref__", "_cause", "_children", "_dl", "_done", "_err", "_parent", "_pc")

    def __init__(self, parent: Context) -> None:
        self._parent = parent
        self._dl: float | None = parent.deadline()
        self._done: Chan | None = None  # _mu; made on first done()
        self._err: ContextError | None = None  # _mu
        self._cause: Any = None  # _mu
        self._children: dict[_CancelCtx, None] | None = {}  # _mu; None once cancelled
        self._pc: _CancelCtx | None = None  # _mu; the ancestor c is registered with

    def __repr__(self) -> str:
        return f"{self._parent!r}.WithCancel"

    def deadline(self) -> float | None:
        return self._dl

    def done(self) -> Chan:
        d = self._done
        if d is not None:
            return d
        with _mu:
            d = self._done
            if d is None:
                d = self._done = Chan() if self._err is None else _closedchan
        return d

    def err(self) -> ContextError | None:
        return self._err  # one read of a field written once under _mu

    def value(self, key: Any) -> Any:
        return _value(self, key)

    def cancel(
        self, remove_from_parent: bool, err: ContextError, cause: BaseException | None
    ) -> None:
        """Cancel c and every descendant; detach c from its parent if asked.

        Safe to call more than once: only the first call has an effect.
        """
        closes: list[Chan] = []
        hooks: list[_CancelCtx] = []
        why: Any = err if cause is None else cause
        with _mu:
            if self._err is not None:
                return
            stack: list[_CancelCtx] = [self]
            while stack:
                c = stack.pop()
                if c._err is not None:
                    continue
                c._err = err
                c._cause = why
                d = c._done
                if d is None:
                    c._done = _closedchan
                else:
                    closes.append(d)
                kids = c._children
                c._children = None
                if kids:
                    stack.extend(kids)
                if type(c) is not _CancelCtx:
                    hooks.append(c)
            pc = self._pc
            if pc is not None:
                self._pc = None
                if remove_from_parent and pc._children:
                    pc._children.pop(self, None)
        for d in closes:
            d.close()
        for c in hooks:
            c._cancelled()

    def _cancelled(self) -> None:
        """What a subclass does once cancelled, after _mu is released."""


def _parent_cancel_ctx(parent: Context) -> _CancelCtx | None:
    """The cancelCtx a child of parent registers with (Go's parentCancelCtx).

    None for a custom Context whose done() is its own channel: then a
    goroutine has to watch it.
    """
    p = _value(parent, _cancel_ctx_key)
    if not isinstance(p, _CancelCtx):
        return None
    if parent.done() is not p.done():
        return None  # a custom context wrapping ours, with its own done()
    return p


def _propagate_cancel(parent: Context, child: _CancelCtx) -> None:
    """Arrange for child to be cancelled when parent is (Go's propagateCancel)."""
    t = type(parent)
    if t is _CancelCtx or t is _TimerCtx or t is _AfterFuncCtx:
        p: _CancelCtx | None = cast(_CancelCtx, parent)  # without making its done channel
    elif t is _EmptyCtx or t is _WithoutCancelCtx:
        return  # never cancelled
    else:
        if parent.done() is nilchan:
            return  # parent is never cancelled
        p = _parent_cancel_ctx(parent)
    if p is not None:
        with _mu:
            kids = p._children
            if kids is not None:
                kids[child] = None
                child._pc = p
                return
        child.cancel(False, p._err, p._cause)  # type: ignore[arg-type]
        return
    err = parent.err()
    if err is not None:
        child.cancel(False, err, cause(parent))
        return
    newproc(_watch, parent, child)


def _watch(parent: Context, child: _CancelCtx) -> None:
    """A goroutine that forwards a custom parent's cancellation to child."""
    i, _ = select(parent.done().recv, child.done().recv)
    if i == 0:
        err = parent.err()
        child.cancel(False, err if err is not None else Canceled, cause(parent))


def with_cancel(parent: Context) -> tuple[Context, CancelFunc]:
    """A child of parent with its own cancel function (Go's WithCancel).

    Calling cancel releases the context's resources: call it as soon as the
    work under the context is done (``try``/``finally``), as Go's ``defer
    cancel()``.
    """
    c = _new_cancel_ctx(parent)
    return c, lambda: c.cancel(True, Canceled, None)


def with_cancel_cause(parent: Context) -> tuple[Context, CancelCauseFunc]:
    """Like with_cancel, but cancel(exc) records exc as the cause (see cause())."""
    c = _new_cancel_ctx(parent)
    return c, lambda exc=None: c.cancel(True, Canceled, exc)


def _new_cancel_ctx(parent: Context) -> _CancelCtx:
    if parent is None:
        raise Panic("cannot create context from nil parent")
    c = _CancelCtx(parent)
    _propagate_cancel(parent, c)
    return c


def cause(ctx: Context) -> Any:
    """Why ctx was cancelled (Go's context.Cause).

    The exception given to a cancel-cause function or a ``*_cause``
    constructor; ``ctx.err()`` when none was given; None while ctx is live.
    """
    cc = _value(ctx, _cancel_ctx_key)
    if isinstance(cc, _CancelCtx):
        with _mu:
            return cc._cause
    return ctx.err()


class _DeadlineFire:
    """The timer's callback: holds its context only until it fires or is
    stopped, so a stopped timer's heap entry keeps nothing alive."""

    __slots__ = ("cause", "ctx")

    def __init__(self, ctx: _TimerCtx, cause: BaseException | None) -> None:
        self.ctx: _TimerCtx | None = ctx
        self.cause = cause

    def __call__(self) -> None:
        c = self.ctx
        if c is not None:
            c.cancel(True, DeadlineExceeded, self.cause)


class _TimerCtx(_CancelCtx):
    """A cancelCtx with a deadline, enforced by a runtime timer (Go's timerCtx)."""

    __slots__ = ("_fire", "_timer")

    def __init__(self, parent: Context, d: float) -> None:
        super().__init__(parent)
        self._dl = d
        self._timer: Timer | None = None  # _mu
        self._fire: _DeadlineFire | None = None  # _mu

    def __repr__(self) -> str:
        left = (self._dl or 0.0) - now()
        return f"{self._parent!r}.WithDeadline({self._dl:.6f} [{left:.6f}s])"

    def _cancelled(self) -> None:
        with _mu:
            t, f = self._timer, self._fire
            self._timer = self._fire = None
        if f is not None:
            f.ctx = None
        if t is not None:
            t.stop()


def with_deadline(parent: Context, d: float) -> tuple[Context, CancelFunc]:
    """A child cancelled with DeadlineExceeded at time d (``gort.now()`` clock)."""
    return with_deadline_cause(parent, d, None)


def with_deadline_cause(
    parent: Context, d: float, cause: BaseException | None
) -> tuple[Context, CancelFunc]:
    """Like with_deadline; cause(ctx) is ``cause`` once the deadline passed."""
    if parent is None:
        raise Panic("cannot create context from nil parent")
    cur = parent.deadline()
    if cur is not None and cur < d:
        return with_cancel(parent)  # the parent's deadline comes first anyway
    c = _TimerCtx(parent, d)
    _propagate_cancel(parent, c)
    dur = d - now()
    if dur <= 0:
        c.cancel(True, DeadlineExceeded, cause)
        return c, lambda: c.cancel(False, Canceled, None)
    fire = _DeadlineFire(c, cause)
    t = Timer(dur, _fn=fire, _call="gort.with_deadline")
    with _mu:
        armed = c._err is None
        if armed:
            c._timer, c._fire = t, fire
    if not armed:  # cancelled (by the parent) while the timer was made
        t.stop()
    return c, lambda: c.cancel(True, Canceled, None)


def with_timeout(parent: Context, timeout: float) -> tuple[Context, CancelFunc]:
    """``with_deadline(parent, gort.now() + timeout)``."""
    return with_deadline_cause(parent, now() + timeout, None)


def with_timeout_cause(
    parent: Context, timeout: float, cause: BaseException | None
) -> tuple[Context, CancelFunc]:
    """``with_deadline_cause(parent, gort.now() + timeout, cause)``."""
    return with_deadline_cause(parent, now() + timeout, cause)


class _ValueCtx(Context):
    """One key/value pair on top of parent (Go's valueCtx)."""

    __slots__ = ("__weakref__", "_key", "_parent", "_val")

    def __init__(self, parent: Context, key: Any, val: Any) -> None:
        self._parent = parent
        self._key = key
        self._val = val

    def __repr__(self) -> str:
        return f"{self._parent!r}.WithValue({self._key!r}, {self._val!r})"

    def deadline(self) -> float | None:
        return self._parent.deadline()

    def done(self) -> Chan:
        return self._parent.done()

    def err(self) -> ContextError | None:
        return self._parent.err()

    def value(self, key: Any) -> Any:
        return _value(self, key)


def with_value(parent: Context, key: Any, val: Any) -> Context:
    """A child of parent whose value(key) is val (Go's WithValue).

    Keys are compared with ``==``; use a private object or class as the key,
    as Go advises, so packages do not collide.
    """
    if parent is None:
        raise Panic("cannot create context from nil parent")
    if key is None:
        raise Panic("nil key")
    try:
        hash(key)
    except TypeError:
        raise Panic("key is not comparable") from None
    return _ValueCtx(parent, key, val)


class _WithoutCancelCtx(Context):
    """parent's values, never cancelled (Go's withoutCancelCtx)."""

    __slots__ = ("_parent",)

    def __init__(self, parent: Context) -> None:
        self._parent = parent

    def __repr__(self) -> str:
        return f"{self._parent!r}.WithoutCancel"

    def deadline(self) -> float | None:
        return None

    def done(self) -> Chan:
        return nilchan

    def err(self) -> ContextError | None:
        return None

    def value(self, key: Any) -> Any:
        return _value(self, key)


def without_cancel(parent: Context) -> Context:
    """A context with parent's values that is not cancelled when parent is."""
    if parent is None:
        raise Panic("cannot create context from nil parent")
    return _WithoutCancelCtx(parent)


class _AfterFuncCtx(_CancelCtx):
    """Runs f in a goroutine once its parent is done (Go's afterFuncCtx)."""

    __slots__ = ("_f",)

    def __init__(self, parent: Context, f: Callable[[], Any]) -> None:
        super().__init__(parent)
        self._f: Callable[[], Any] | None = f  # _mu; None once run or stopped

    def _cancelled(self) -> None:
        with _mu:
            f, self._f = self._f, None
        if f is not None:
            newproc(f)

    def stop(self) -> bool:
        with _mu:
            f, self._f = self._f, None
        if f is None:
            return False
        self.cancel(True, Canceled, None)
        return True


def context_after_func(ctx: Context, f: Callable[[], Any]) -> Callable[[], bool]:
    """Run f in its own goroutine once ctx is done (Go's context.AfterFunc).

    f runs at most once, even if ctx is already done. The returned stop()
    prevents it: True if it did so, False if f has been started or stop was
    called before.
    """
    a = _AfterFuncCtx(ctx, f)
    _propagate_cancel(ctx, a)
    return a.stop
