"""Whether a web address given in an agreement file or pasted by a party is one ratify may read:
pure, one set of rules for the calendars' URLs and the decision sources' addresses."""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["URL_MAX", "address_problem"]

URL_MAX = 2000


def address_problem(url: str, example: str, *, fragment: bool = False) -> str | None:
    """Why ``url`` is not an http(s) address to read, with the fix (``example``: how a right one
    looks), or None. ``fragment``: a #fragment is let through (a minutes item's anchor)."""
    if len(url) > URL_MAX:
        return f"is longer than {URL_MAX} characters; give the page's own address"
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url) or not url.isascii():
        return (
            "holds spaces, control or non-ASCII characters; give the address as the browser "
            f"shows it when copied, percent-encoded, {example}"
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"is not a URL ({exc}); give one {example}"
    if parts.scheme not in ("http", "https"):
        shown = repr(parts.scheme) if parts.scheme else "no scheme"
        return f"has {shown}; only http and https are fetched: give a URL {example}"
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return f"holds a user name or password; give a public address without them, {example}"
    if not parts.hostname:
        return f"names no host; give a URL {example}"
    if port == 0:
        return f"has port 0; give a URL {example}"
    if parts.fragment and not fragment:
        return f"ends with a #fragment, which is never fetched; remove it, {example}"
    return None
