"""One sanitiser for text from outside (a peer, a file, the environment) on its way to a person.

A certificate subject, a ``Server`` header or a proxy's answer is chosen by whoever runs the
peer. Printed raw, an ESC sequence clears the screen or retitles the window, a carriage return
overwrites the verdict line, and a bidi override makes text read backwards. ``printable``
escapes every such character visibly (``\\x1b``, ``\\r``, ``\\u202e``) and bounds the length;
``clip`` only bounds it, for raw values the JSON keeps (its encoder escapes control characters).

Escaped: the C0 controls, DEL and the C1 controls (Unicode category Cc, which includes ESC, CR,
LF, TAB and NEL), format characters (Cf: the bidi embeddings, overrides and isolates
U+202A-U+202E and U+2066-U+2069, the marks U+200E/U+200F/U+061C, zero-width characters), the
line and paragraph separators (Zl, Zp) and lone surrogates (Cs, which could not even be encoded
for a UTF-8 terminal). Backslashes are left alone, so the function is idempotent: its output
holds nothing it would escape again.
"""

from __future__ import annotations

import re
import unicodedata

# Any one field a person reads: a detail sentence, a certificate name, a header value.
MAX_FIELD = 1000

_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
# Fast path: printable ASCII needs no per-character look-up.
_PLAIN = re.compile(r"[\x20-\x7e]*")


def _escape(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def escape_controls(text: str) -> str:
    """``text`` with every control, format, separator and surrogate character escaped visibly."""
    if _PLAIN.fullmatch(text):
        return text
    return "".join(_escape(ch) if unicodedata.category(ch) in _UNSAFE_CATEGORIES else ch for ch in text)


def _marker(cut: int) -> str:
    return f"… [{cut} more characters]"


def clip(text: str, limit: int = MAX_FIELD) -> tuple[str, int]:
    """``text`` cut to at most ``limit`` characters, marker included, and how many were cut.

    The result never exceeds ``limit``, so clipping again cuts nothing.
    """
    if len(text) <= limit:
        return text, 0
    keep = limit
    while keep > 0 and keep + len(_marker(len(text) - keep)) > limit:
        keep -= 1
    cut = len(text) - keep
    return text[:keep] + _marker(cut), cut


def printable(text: object, limit: int | None = MAX_FIELD) -> str:
    """``text`` safe to write to a terminal: escaped as described above, then bounded."""
    safe = escape_controls(str(text))
    return safe if limit is None else clip(safe, limit)[0]
