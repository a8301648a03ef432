"""Certificate fields in alerts are someone else's text.

A common name or SAN comes from a CSR or an imported certificate, so it may hold line
breaks, control characters or markup. ``plain`` makes any such value one line of inert
text (every channel gets it through the rendered subject and text); ``header``,
``slack`` and ``teams`` make it inert in an email header, Slack mrkdwn and Teams
Adaptive Card markdown. Webhook and PagerDuty bodies are JSON, which escapes by itself.

Slack and Adaptive Cards have no escape for their formatting characters, so those are
replaced by look-alikes (as jsx-slack's <Escape> does): a wildcard ``*.example.com``
reads with an asterisk operator (U+2217) in chat, and cannot open bold text.
"""

from __future__ import annotations

import unicodedata

REPLACEMENT = "\N{REPLACEMENT CHARACTER}"
HEADER_MAX = 200
# Bidirectional overrides and isolates reorder what a reader sees (CVE-2021-42574).
_BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}
_LOOKALIKES = {
    "*": "\N{ASTERISK OPERATOR}",
    "_": "\N{MODIFIER LETTER LOW MACRON}",
    "~": "\N{TILDE OPERATOR}",
    "`": "\N{MODIFIER LETTER GRAVE ACCENT}",
}
_SLACK = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", **_LOOKALIKES})
_TEAMS = str.maketrans(
    {
        **_LOOKALIKES,
        "[": "\N{FULLWIDTH LEFT SQUARE BRACKET}",
        "]": "\N{FULLWIDTH RIGHT SQUARE BRACKET}",
        "<": "\N{SMALL LESS-THAN SIGN}",
        ">": "\N{SMALL GREATER-THAN SIGN}",
        "#": "\N{FULLWIDTH NUMBER SIGN}",
    }
)
ZERO_WIDTH_SPACE = "\N{ZERO WIDTH SPACE}"


def _inert(char: str) -> bool:
    return unicodedata.category(char) not in ("Cc", "Zl", "Zp") and char not in _BIDI


def plain(value: object) -> str:
    """One line of text: control characters, line separators and bidi overrides replaced;
    a list (the SANs) as its items joined with commas."""
    if isinstance(value, list | tuple):
        return ", ".join(plain(item) for item in value)
    text = str(value)
    if all(_inert(c) for c in text):
        return text
    return "".join(c if _inert(c) else REPLACEMENT for c in text)


def header(value: str) -> str:
    """An email header value: one line (no CR/LF, so no injected header), bounded."""
    text = plain(value).strip()
    return text if len(text) <= HEADER_MAX else text[: HEADER_MAX - 1] + "\N{HORIZONTAL ELLIPSIS}"


def slack(value: str) -> str:
    """Inert in Slack mrkdwn: no link, mention (<!channel>, <@U..>, bare @here) or styling.

    Newlines are kept: the caller's own lines (plain values cannot hold one)."""
    return value.translate(_SLACK).replace("@", "@" + ZERO_WIDTH_SPACE)


def teams(value: str) -> str:
    """Inert in Adaptive Card markdown: no link, emphasis, heading or tag."""
    return value.translate(_TEAMS)
