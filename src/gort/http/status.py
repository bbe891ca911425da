"""Go's net/http status codes and texts (status.go)."""

from __future__ import annotations

from http import HTTPStatus

STATUS_OK = 200
STATUS_BAD_REQUEST = 400
STATUS_NOT_FOUND = 404
STATUS_METHOD_NOT_ALLOWED = 405
STATUS_INTERNAL_SERVER_ERROR = 500

# Go's texts where they differ from Python's phrases
_GO_TEXT = {
    302: "Found",
    413: "Request Entity Too Large",
    414: "Request URI Too Long",
    416: "Requested Range Not Satisfiable",
    418: "I'm a teapot",
    422: "Unprocessable Entity",
    425: "Too Early",
}


def status_text(code: int) -> str:
    """Go's http.StatusText: the reason phrase, "" for an unknown code."""
    text = _GO_TEXT.get(code)
    if text is not None:
        return text
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return ""


_status_lines: dict[tuple[bool, int], bytes] = {}


def status_line(is11: bool, code: int) -> bytes:
    """ "HTTP/1.1 200 OK\\r\\n", cached per (protocol, code) as Go's statusLine does."""
    line = _status_lines.get((is11, code))
    if line is None:
        if code < 100 or code > 999:
            raise ValueError(f"invalid WriteHeader code {code}")
        text = status_text(code) or f"status code {code}"
        proto = "HTTP/1.1" if is11 else "HTTP/1.0"
        line = f"{proto} {code:03d} {text}\r\n".encode("latin-1")
        _status_lines[(is11, code)] = line
    return line
