"""Go's http.DetectContentType (sniff.go), for the signatures servers meet most.

Go's algorithm: look at the first 512 bytes; HTML tags (after leading
whitespace, case-insensitively, followed by a space or '>'), then exact and
masked signatures, then "text/plain; charset=utf-8" when no byte is binary,
else "application/octet-stream". The audio/video and font signatures are left
out (they fall to application/octet-stream; docs/api.md says so).
"""

from __future__ import annotations

SNIFF_LEN = 512

_HTML_TAGS = (
    b"<!DOCTYPE HTML",
    b"<HTML",
    b"<HEAD",
    b"<SCRIPT",
    b"<IFRAME",
    b"<H1",
    b"<DIV",
    b"<FONT",
    b"<TABLE",
    b"<A",
    b"<STYLE",
    b"<TITLE",
    b"<B",
    b"<BODY",
    b"<BR",
    b"<P",
    b"<!--",
)

_PREFIXES = (
    (b"\xfe\xff", "text/plain; charset=utf-16be"),
    (b"\xff\xfe", "text/plain; charset=utf-16le"),
    (b"\xef\xbb\xbf", "text/plain; charset=utf-8"),
    (b"%PDF-", "application/pdf"),
    (b"%!PS-Adobe-", "application/postscript"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"\x89PNG\x0d\x0a\x1a\x0a", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"BM", "image/bmp"),
    (b"\x00\x00\x01\x00", "image/x-icon"),
    (b"\x00\x00\x02\x00", "image/x-icon"),
    (b"PK\x03\x04", "application/zip"),
    (b"\x1f\x8b\x08", "application/x-gzip"),
    (b"Rar!\x1a\x07\x00", "application/x-rar-compressed"),
    (b"Rar!\x1a\x07\x01\x00", "application/x-rar-compressed"),
    (b"\x00asm", "application/wasm"),
)

_WS = b"\t\n\x0c\r "
_BINARY = bytes([*range(0x00, 0x09), 0x0B, *range(0x0E, 0x1B), *range(0x1C, 0x20)])


def detect_content_type(data: bytes | bytearray | memoryview) -> str:
    """The MIME type of data, by Go's sniffing rules (always a valid type)."""
    data = bytes(data[:SNIFF_LEN])
    stripped = data.lstrip(_WS)
    upper = stripped[:16].upper()
    for tag in _HTML_TAGS:
        if upper.startswith(tag) and len(stripped) > len(tag) and stripped[len(tag)] in b" >":
            return "text/html; charset=utf-8"
    if stripped.startswith(b"<?xml"):
        return "text/xml; charset=utf-8"
    for prefix, ctype in _PREFIXES:
        if data.startswith(prefix):
            return ctype
    if data[:4] == b"RIFF" and data[8:14] == b"WEBPVP":
        return "image/webp"
    if len(data.translate(None, _BINARY)) != len(data):
        return "application/octet-stream"
    return "text/plain; charset=utf-8"
