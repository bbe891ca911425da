"""Go 1.22's ServeMux: patterns (pattern.go), the routing tree
(routing_tree.go) and the mux itself (server.go).

A pattern is ``[METHOD ][HOST]/[PATH]``; path segments are literals,
``{name}`` (one segment), ``{name...}`` (the rest of the path, last only),
``{$}`` (the end of the path, after a trailing slash); a trailing slash
matches any continuation. Registration refuses a pattern that conflicts with
one already registered (the two match some request in common and neither is
more specific), so at match time the tree's order (a literal before a
wildcard, a single wildcard before a multi; a host before none; the exact
method, then GET for HEAD, then any method) finds the most specific pattern.

The tree is written by handle() and read by matches; a lock serialises
registrations, and a match reads a tree that registration only ever grows
(dict insertions, atomic under the GIL), as Go's mux holds an RWMutex.
"""

from __future__ import annotations

import threading

from .header import _TOKEN
from .request import Request
from .server import Handler, HandlerFunc, ResponseWriter, as_handler_func
from .status import status_text

# relationships between two patterns (Go's relationship)
EQUIVALENT, MORE_GENERAL, MORE_SPECIFIC, DISJOINT, OVERLAPS = (
    "equivalent",
    "moreGeneral",
    "moreSpecific",
    "disjoint",
    "overlaps",
)
_INVERSE = {MORE_GENERAL: MORE_SPECIFIC, MORE_SPECIFIC: MORE_GENERAL}


class _Segment:
    __slots__ = ("multi", "s", "wild")

    def __init__(self, s: str, wild: bool = False, multi: bool = False) -> None:
        self.s = s  # literal text, or the wildcard's name ("" for a trailing slash)
        self.wild = wild
        self.multi = multi


class Pattern:
    """A parsed ServeMux pattern."""

    __slots__ = ("host", "loc", "method", "names", "segments", "str")

    def __init__(self, s: str) -> None:
        self.str = s
        self.method = ""
        self.host = ""
        self.segments: list[_Segment] = []
        self.names: list[str] = []  # named wildcards, in order (what matches fill)
        self.loc = ""
        try:
            self._parse(s)
        except _ParseError as e:
            raise ValueError(f'parsing "{s}": {e}') from None

    def _parse(self, s: str) -> None:
        if not s:
            raise _ParseError("empty pattern")
        off = 0
        method, rest, found = s, "", False
        i = min((j for j in (s.find(" "), s.find("\t")) if j >= 0), default=-1)
        if i >= 0:
            method, rest, found = s[:i], s[i + 1 :].lstrip(" \t"), True
        if not found:
            rest, method = method, ""
        if method and not all(ord(c) < 128 and ord(c) in _TOKEN for c in method):
            raise _ParseError(f'at offset 0: invalid method "{method}"')
        self.method = method
        if found:
            off = len(method) + 1
        i = rest.find("/")
        if i < 0:
            raise _ParseError(f"at offset {off}: host/path missing /")
        self.host = rest[:i]
        rest = rest[i:]
        j = self.host.find("{")
        if j >= 0:
            raise _ParseError(f"at offset {off + j}: host contains '{{' (missing initial '/'?)")
        off += i
        if method and method != "CONNECT" and rest != clean_path(rest):
            raise _ParseError(
                f"at offset {off}: non-CONNECT pattern with unclean path can never match"
            )
        seen: set[str] = set()
        while rest:
            rest = rest[1:]  # invariant: rest began with '/'
            off = len(s) - len(rest)
            if not rest:
                self.segments.append(_Segment("", wild=True, multi=True))  # trailing slash
                break
            i = rest.find("/")
            if i < 0:
                i = len(rest)
            seg, rest = rest[:i], rest[i:]
            if "{" not in seg:
                self.segments.append(_Segment(_unescape(seg)))
                continue
            if seg[0] != "{":
                raise _ParseError(f"at offset {off}: bad wildcard segment (must start with '{{')")
            if seg[-1] != "}":
                raise _ParseError(f"at offset {off}: bad wildcard segment (must end with '}}')")
            name = seg[1:-1]
            if name == "$":
                if rest:
                    raise _ParseError(f"at offset {off}: {{$}} not at end")
                self.segments.append(_Segment("/"))
                break
            multi = name.endswith("...")
            if multi:
                name = name[:-3]
                if rest:
                    raise _ParseError(f"at offset {off}: {{...}} wildcard not at end")
            if not name:
                raise _ParseError(f"at offset {off}: empty wildcard")
            if not name.isidentifier():
                raise _ParseError(f'at offset {off}: bad wildcard name "{name}"')
            if name in seen:
                raise _ParseError(f'at offset {off}: duplicate wildcard name "{name}"')
            seen.add(name)
            self.names.append(name)
            self.segments.append(_Segment(name, wild=True, multi=multi))

    def __str__(self) -> str:
        return self.str

    def __repr__(self) -> str:
        return f"Pattern({self.str!r})"

    def last_multi(self) -> bool:
        return bool(self.segments) and self.segments[-1].multi

    # Go's relationships, used to refuse conflicting registrations

    def conflicts_with(self, other: Pattern) -> bool:
        if self.host != other.host:
            return False  # the one with a host wins, or they never meet
        rel = self.compare_paths_and_methods(other)
        return rel in (EQUIVALENT, OVERLAPS)

    def compare_paths_and_methods(self, other: Pattern) -> str:
        mrel = self.compare_methods(other)
        if mrel == DISJOINT:
            return DISJOINT
        return _combine(mrel, self.compare_paths(other))

    def compare_methods(self, other: Pattern) -> str:
        m1, m2 = self.method, other.method
        if m1 == m2:
            return EQUIVALENT
        if not m1:
            return MORE_GENERAL
        if not m2:
            return MORE_SPECIFIC
        if m1 == "GET" and m2 == "HEAD":
            return MORE_GENERAL
        if m2 == "GET" and m1 == "HEAD":
            return MORE_SPECIFIC
        return DISJOINT

    def compare_paths(self, other: Pattern) -> str:
        s1, s2 = self.segments, other.segments
        if len(s1) != len(s2) and not self.last_multi() and not other.last_multi():
            return DISJOINT
        rel = EQUIVALENT
        for a, b in zip(s1, s2, strict=False):
            rel = _combine(rel, _compare_segments(a, b))
            if rel == DISJOINT:
                return rel
        if len(s1) == len(s2):
            return rel
        if len(s1) < len(s2) and self.last_multi():
            return _combine(rel, MORE_GENERAL)
        if len(s2) < len(s1) and other.last_multi():
            return _combine(rel, MORE_SPECIFIC)
        return DISJOINT


class _ParseError(Exception):
    pass


def _compare_segments(a: _Segment, b: _Segment) -> str:
    if a.multi and b.multi:
        return EQUIVALENT
    if a.multi:
        return MORE_GENERAL
    if b.multi:
        return MORE_SPECIFIC
    if a.wild and b.wild:
        return EQUIVALENT
    if a.wild:
        return DISJOINT if b.s == "/" else MORE_GENERAL  # a wildcard never matches "/"
    if b.wild:
        return DISJOINT if a.s == "/" else MORE_SPECIFIC
    return EQUIVALENT if a.s == b.s else DISJOINT


def _combine(r1: str, r2: str) -> str:
    if r1 == EQUIVALENT:
        return r2
    if r1 == DISJOINT:
        return DISJOINT
    if r1 == OVERLAPS:
        return DISJOINT if r2 == DISJOINT else OVERLAPS
    # r1 is MORE_GENERAL or MORE_SPECIFIC
    if r2 == EQUIVALENT:
        return r1
    if r2 == _INVERSE[r1]:
        return OVERLAPS
    return r2


def _unescape(s: str) -> str:
    if "%" not in s:
        return s
    from urllib.parse import unquote

    return unquote(s)


def clean_path(p: str) -> str:
    """Go's cleanPath: path.Clean, keeping a trailing slash."""
    if not p:
        return "/"
    if p[0] != "/":
        p = "/" + p
    if "//" not in p and "/." not in p:
        return p  # already clean: the common case
    out: list[str] = []
    for seg in p.split("/"):
        if not seg or seg == ".":
            continue
        if seg == "..":
            if out:
                out.pop()
            continue
        out.append(seg)
    np = "/" + "/".join(out)
    if p[-1] == "/" and np != "/":
        np += "/"
    return np


class _Node:
    """A routing tree node (Go's routingNode): children by literal segment
    ("" for a single wildcard), at most one multi-wildcard child."""

    __slots__ = ("children", "handler", "multi", "pattern")

    def __init__(self) -> None:
        self.pattern: Pattern | None = None
        self.handler: HandlerFunc | None = None
        self.children: dict[str, _Node] = {}
        self.multi: _Node | None = None

    def add_child(self, key: str) -> _Node:
        c = self.children.get(key)
        if c is None:
            c = self.children[key] = _Node()
        return c

    def add_segments(self, segs: list[_Segment], p: Pattern, h: HandlerFunc) -> None:
        n = self
        for i, seg in enumerate(segs):
            if seg.multi:
                assert i == len(segs) - 1, "multi wildcard not last"
                c = n.multi = _Node()
                c.pattern, c.handler = p, h
                return
            n = n.add_child("" if seg.wild else seg.s)
        n.pattern, n.handler = p, h

    def match_method_and_path(self, method: str, path: str) -> tuple[_Node, list[str]] | None:
        ch = self.children
        n = ch.get(method)
        if n is not None:
            m = n.match_path(path, [])
            if m is not None:
                return m
        if method == "HEAD":
            n = ch.get("GET")
            if n is not None:
                m = n.match_path(path, [])
                if m is not None:
                    return m
        n = ch.get("")
        return n.match_path(path, []) if n is not None else None

    def match_path(self, path: str, matches: list[str]) -> tuple[_Node, list[str]] | None:
        if not path:
            return (self, matches) if self.pattern is not None else None
        seg, rest = _first_segment(path)
        ch = self.children
        c = ch.get(seg)
        if c is not None:
            m = c.match_path(rest, matches)
            if m is not None:
                return m
        if seg != "/":
            c = ch.get("")
            if c is not None:
                m = c.match_path(rest, [*matches, seg])
                if m is not None:
                    return m
        c = self.multi
        if c is not None:
            assert c.pattern is not None
            if c.pattern.segments[-1].s:  # not the anonymous multi of a trailing slash
                matches = [*matches, _unescape(path[1:])]
            return c, matches
        return None

    def matching_methods_path(self, path: str, methods: set[str]) -> None:
        for method, c in self.children.items():
            if method and c.match_path(path, []) is not None:
                methods.add(method)


def _first_segment(path: str) -> tuple[str, str]:
    if path == "/":
        return "/", ""
    i = path.find("/", 1)
    if i < 0:
        i = len(path)
    return _unescape(path[1:i]), path[i:]


def _exact_match(n: _Node | None, path: str) -> bool:
    if n is None:
        return False
    assert n.pattern is not None
    if not n.pattern.last_multi():
        return True
    if path and path[-1] != "/":
        return False
    return len(n.pattern.segments) == path.count("/")


def _strip_host_port(h: str) -> str:
    if ":" not in h:
        return h
    if h.startswith("["):
        end = h.find("]")
        return h[1:end] if end > 0 else h
    return h.rsplit(":", 1)[0]


def error(w: ResponseWriter, msg: str, code: int) -> None:
    """Go's http.Error: a plain-text error reply (msg plus a newline)."""
    h = w.header()
    h.delete("Content-Length")
    h["Content-Type"] = "text/plain; charset=utf-8"
    h["X-Content-Type-Options"] = "nosniff"
    w.write_header(code)
    w.write(msg.encode() + b"\n")


def not_found(w: ResponseWriter, r: Request) -> None:
    """Go's http.NotFound."""
    error(w, "404 page not found", 404)


def redirect(w: ResponseWriter, r: Request, url: str, code: int) -> None:
    """Go's http.Redirect (for a GET or HEAD, a short HTML body too)."""
    h = w.header()
    h["Location"] = url
    if r.method in ("GET", "HEAD"):
        h["Content-Type"] = "text/html; charset=utf-8"
    w.write_header(code)
    if r.method == "GET":
        w.write(f'<a href="{_html_escape(url)}">{status_text(code)}</a>.\n\n'.encode())


def _html_escape(s: str) -> str:
    import html

    return html.escape(s)


class ServeMux:
    """Go 1.22's http.ServeMux (see the module doc)."""

    def __init__(self) -> None:
        self._root = _Node()
        self._patterns: list[Pattern] = []
        self._hosts = False  # some pattern names a host
        self._mu = threading.Lock()

    def handle(self, pattern: str, handler: Handler | HandlerFunc) -> None:
        """Register handler for pattern; a bad or conflicting pattern raises ValueError."""
        if not pattern:
            raise ValueError("http: invalid pattern")
        fn = as_handler_func(handler)
        p = Pattern(pattern)
        import sys

        frame = sys._getframe(1)
        if frame.f_code.co_name == "handle_func":
            frame = frame.f_back or frame
        p.loc = f"{frame.f_code.co_filename}:{frame.f_lineno}"
        with self._mu:
            for q in self._patterns:
                if p.conflicts_with(q):
                    raise ValueError(
                        f'pattern "{p}" (registered at {p.loc}) conflicts with pattern '
                        f'"{q}" (registered at {q.loc}):\n{_describe_conflict(p, q)}'
                    )
            self._root.add_child(p.host).add_child(p.method).add_segments(p.segments, p, fn)
            self._patterns.append(p)
            if p.host:
                self._hosts = True

    def handle_func(self, pattern: str, handler: HandlerFunc) -> None:
        """Register a handler function (Go's HandleFunc)."""
        self.handle(pattern, handler)

    def _match(self, host: str, method: str, path: str) -> tuple[_Node, list[str]] | None:
        root = self._root.children
        if host and self._hosts:
            n = root.get(host)
            if n is not None:
                m = n.match_method_and_path(method, path)
                if m is not None:
                    return m
        n = root.get("")
        return n.match_method_and_path(method, path) if n is not None else None

    def handler(self, r: Request) -> tuple[HandlerFunc, str, list[str], Pattern | None]:
        """The handler for r, the pattern string, the wildcard values and the
        pattern (Go's ServeMux.Handler, plus what ServeHTTP stores in r)."""
        method = r.method
        escaped = r.url.escaped
        host = _strip_host_port(r.host) if self._hosts else ""
        path = escaped if method == "CONNECT" else clean_path(escaped)
        m = self._match(host, method, path)
        if method != "CONNECT":
            if not _exact_match(m[0] if m else None, path) and not path.endswith("/"):
                m2 = self._match(host, method, path + "/")
                if m2 is not None and _exact_match(m2[0], path + "/"):
                    return _redirect_to(path + "/", r.url.raw_query), path + "/", [], None
            if path != escaped:
                pat = str(m[0].pattern) if m else ""
                return _redirect_to(path, r.url.raw_query), pat, [], None
        if m is None:
            methods: set[str] = set()
            for h in (host, "") if host else ("",):
                hn = self._root.children.get(h)
                if hn is not None:
                    hn.matching_methods_path(path, methods)
                    if not path.endswith("/"):
                        hn.matching_methods_path(path + "/", methods)
            if "GET" in methods:
                methods.add("HEAD")
            if methods:
                return _method_not_allowed(sorted(methods)), "", [], None
            return not_found, "", [], None
        node, matches = m
        assert node.handler is not None and node.pattern is not None
        return node.handler, node.pattern.str, matches, node.pattern

    def serve_http(self, w: ResponseWriter, r: Request) -> None:
        if r.url.escaped == "*":
            if r.proto_minor == 1:
                w.header()["Connection"] = "close"
            w.write_header(400)
            return
        h, pat, matches, p = self.handler(r)
        r.pattern = pat
        if matches and p is not None:
            r._path_values = dict(zip(p.names, matches, strict=False))
        h(w, r)

    __call__ = serve_http


def _redirect_to(path: str, query: str) -> HandlerFunc:
    url = f"{path}?{query}" if query else path

    def h(w: ResponseWriter, r: Request) -> None:
        redirect(w, r, url, 301)

    return h


def _method_not_allowed(methods: list[str]) -> HandlerFunc:
    allow = ", ".join(methods)

    def h(w: ResponseWriter, r: Request) -> None:
        w.header()["Allow"] = allow
        error(w, status_text(405), 405)

    return h


def _describe_conflict(p1: Pattern, p2: Pattern) -> str:
    rel = p1.compare_paths_and_methods(p2)
    if rel == EQUIVALENT:
        return f"{p1} matches the same requests as {p2}"
    return f"{p1} and {p2} both match some paths.\nBut neither is more specific than the other."


default_serve_mux = ServeMux()


def handle(pattern: str, handler: Handler | HandlerFunc) -> None:
    """Register on the default ServeMux (Go's http.Handle)."""
    default_serve_mux.handle(pattern, handler)


def handle_func(pattern: str, handler: HandlerFunc) -> None:
    """Register on the default ServeMux (Go's http.HandleFunc)."""
    default_serve_mux.handle(pattern, handler)
