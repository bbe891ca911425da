"""Go's net/http Header and net/textproto's canonical keys (header.go, textproto/reader.go).

A Header maps canonical keys ("Content-Type") to lists of values. Lookups
canonicalize the key, so access is case-insensitive, as Go's Get/Set/Add/Del
are. Canonical forms are cached (the same few dozen names recur on every
request); the cache is bounded so hostile names cannot grow it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableMapping

_CACHE_MAX = 1000

# canonical form by spelling; both str (user code) and bytes (the parser's names)
_canon: dict[str, str] = {}
_canon_bytes: dict[bytes, str] = {}

_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _canonicalize(key: str) -> str:
    """textproto.CanonicalMIMEHeaderKey: the first letter and every letter after
    a hyphen upper case, the rest lower case. A key holding a character that is
    not a token character is returned unchanged, as Go does."""
    if not key.isascii() or any(ord(c) not in _TOKEN for c in key):
        return key
    out = []
    upper = True
    for c in key:
        out.append(c.upper() if upper else c.lower())
        upper = c == "-"
    return "".join(out)


def canonical_header_key(key: str) -> str:
    """Go's http.CanonicalHeaderKey."""
    ck = _canon.get(key)
    if ck is None:
        ck = _canonicalize(key)
        if len(_canon) < _CACHE_MAX:
            _canon[key] = ck
    return ck


def canonical_header_key_bytes(name: bytes) -> str:
    """The canonical key of a header name as the parser gives it (latin-1 bytes)."""
    ck = _canon_bytes.get(name)
    if ck is None:
        ck = canonical_header_key(name.decode("latin-1"))
        if len(_canon_bytes) < _CACHE_MAX:
            _canon_bytes[name] = ck
    return ck


class Header(MutableMapping[str, str]):
    """A case-insensitive multi-dict of header fields, as Go's http.Header.

    ``h[k]`` is the first value (Go's Get, but KeyError when absent);
    ``h[k] = v`` replaces every value (Set); ``h.add(k, v)`` appends (Add);
    ``h.get_all(k)`` is every value (Values); ``del h[k]`` removes them all.
    Iteration yields canonical keys.
    """

    __slots__ = ("_m",)

    def __init__(self, init: Iterable[tuple[str, str]] | None = None) -> None:
        # canonical key -> values (never an empty list)
        self._m: dict[str, list[str]] = {}
        if init is not None:
            for k, v in init:
                self.add(k, v)

    def __getitem__(self, key: str) -> str:
        return self._m[_canon.get(key) or canonical_header_key(key)][0]

    def __setitem__(self, key: str, value: str) -> None:
        self._m[_canon.get(key) or canonical_header_key(key)] = [value]

    def __delitem__(self, key: str) -> None:
        del self._m[_canon.get(key) or canonical_header_key(key)]

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        return (_canon.get(key) or canonical_header_key(key)) in self._m

    def __iter__(self) -> Iterator[str]:
        return iter(self._m)

    def __len__(self) -> int:
        return len(self._m)

    def __repr__(self) -> str:
        return f"Header({self._m!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Header):
            return self._m == other._m
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        """The first value of key, or default (Go's Get returns "")."""
        vs = self._m.get(_canon.get(key) or canonical_header_key(key))
        return vs[0] if vs else default

    def get_all(self, key: str) -> list[str]:
        """Every value of key, in order (Go's Values); [] when absent."""
        return list(self._m.get(_canon.get(key) or canonical_header_key(key), ()))

    def add(self, key: str, value: str) -> None:
        """Append a value to key (Go's Add)."""
        ck = _canon.get(key) or canonical_header_key(key)
        vs = self._m.get(ck)
        if vs is None:
            self._m[ck] = [value]
        else:
            vs.append(value)

    def set(self, key: str, value: str) -> None:
        """Replace every value of key (Go's Set)."""
        self[key] = value

    def delete(self, key: str) -> None:
        """Remove key; absent is fine (Go's Del)."""
        self._m.pop(_canon.get(key) or canonical_header_key(key), None)

    def multi_items(self) -> list[tuple[str, str]]:
        """Every (key, value) pair, keys in insertion order."""
        return [(k, v) for k, vs in self._m.items() for v in vs]

    def clone(self) -> Header:
        """A deep copy (Go's Clone)."""
        h = Header()
        h._m = {k: list(vs) for k, vs in self._m.items()}
        return h

    def _add_raw(self, name: bytes, value: bytes) -> None:
        """The parser's entry point: a field as it came off the wire."""
        ck = _canon_bytes.get(name) or canonical_header_key_bytes(name)
        vs = self._m.get(ck)
        if vs is None:
            self._m[ck] = [value.decode("latin-1")]
        else:
            vs.append(value.decode("latin-1"))
