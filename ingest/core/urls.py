"""Canonical URLs: one key per story, whatever tracking parameters or host case it came with.

Normalisation and the tracker list are courlan's (lower-case scheme and host, default ports
dropped, query sorted, `utm_*`, `fbclid`, `gclid`, `mc_cid`... removed); on top we drop the
fragment (except `#!` routes) and treat http and https as one story.
"""

from __future__ import annotations

import functools
import hashlib
import re
from urllib.parse import urlsplit, urlunsplit

import courlan


def canonicalize(url: str) -> str:
    """The canonical form of an http(s) URL; anything else (not http(s), unparseable) as given."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            return url
    except ValueError:  # `http://[::1` and the like
        return url
    try:
        normalized = courlan.normalize_url(url)
        parts = urlsplit(normalized)
    except (ValueError, AttributeError):
        parts = urlsplit(url)
    fragment = parts.fragment if parts.fragment.startswith("!") else ""
    path = parts.path or "/"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, fragment))


def url_key(url: str) -> str:
    """The identity of a canonical URL, scheme-blind (a story moving to https stays one).
    Only http and https are one: `x://host/path` keeps its scheme, so whatever is stored under
    its id can never shadow `http://host/path`."""
    canonical = canonicalize(url)
    try:
        parts = urlsplit(canonical)
    except ValueError:
        return canonical
    if parts.scheme.lower() not in ("http", "https"):
        return canonical
    return urlunsplit(("", parts.netloc, parts.path, parts.query, parts.fragment))


def article_id(url: str) -> str:
    """16 hex chars of sha256 of the canonical URL (scheme-blind)."""
    return hashlib.sha256(url_key(url).encode()).hexdigest()[:16]


def short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def feed_id(url: str) -> str:
    """12 hex chars of sha256 of a feed's URL as given (feeds are not canonicalised: the
    registry keeps the URL its owner wrote)."""
    return hashlib.sha256(url.strip().encode()).hexdigest()[:12]


@functools.lru_cache(maxsize=65536)  # feed URLs repeat on every poll
def host_of(url: str) -> str:
    """The URL's host, lower-case; "" when it has none or urllib cannot read the URL
    (`http://[oops/`, `http://a]b/`, a port that is not one: `http://h:abc/`, `http://h:99999/`).

    The URLs come from hostile feeds and pages, so "" is an answer every caller must handle:
    it is no host, never a host to gate, allow, or count a site under, and never "same site".
    A URL whose port cannot be read is unreadable too: it cannot be fetched, and reading its
    host anyway would make it pass checks that `bad_host` and the fetcher then refuse."""
    try:
        parts = urlsplit(url)
        _ = parts.port
        return (parts.hostname or "").lower()
    except ValueError:
        return ""


@functools.lru_cache(maxsize=65536)
def origin_of(url: str) -> str:
    """scheme://host:port, the unit a server answers for; "" when the URL has no readable
    host (see `host_of`), so that no two unreadable URLs share an origin's state."""
    host = host_of(url)
    if not host:
        return ""
    parts = urlsplit(url)  # readable: host_of read it
    scheme = parts.scheme.lower()
    host = f"[{host}]" if ":" in host else host  # an IPv6 literal keeps its brackets
    return f"{scheme}://{host}:{parts.port or (443 if scheme == 'https' else 80)}"


def resolve_amp(url: str) -> str:
    """AMP page URLs to their likely canonical (the page's rel=canonical wins when present);
    a URL urllib cannot read as given."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    path = parts.path
    for suffix in ("/amp/", "/amp", ".amp"):
        if path.endswith(suffix):
            path = path[: -len(suffix)] or "/"
            break
    host = parts.netloc
    if host.startswith("amp."):
        host = host[4:]
    return urlunsplit((parts.scheme, host, path, parts.query, parts.fragment))


def canonical_ipv4(host: str) -> bool:
    """Four decimal octets without leading zeros: the only IPv4 notation we fetch."""
    parts = host.split(".")
    return len(parts) == 4 and all(
        p.isascii() and p.isdigit() and len(p) <= 3 and (p == "0" or p[0] != "0") and int(p) <= 255
        for p in parts
    )


def bad_host(url: str) -> str:
    """Why an http(s) URL's host cannot be fetched ("" when it can): none, an unparseable
    port, or a numeric host in a legacy notation (`2130706433`, `127.1`, `017700000001`) that
    the socket layer would map onto an address but our fetcher refuses. The URL's own fault,
    whoever wrote it (a feed, a redirect): `bad_url`, never a robots.txt to wait for."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        _ = parts.port  # a port that is not one raises
    except ValueError as exc:
        return f"invalid URL: {exc}"
    if not host:
        return "no host"
    if ":" not in host and host.replace(".", "").isdigit() and not canonical_ipv4(host):
        return f"{host} is not a canonical IPv4 address"
    return ""


def _authority_end(rest: str) -> int:
    """Where the authority of `rest` (a URL after its `://`) ends, as urlsplit reads it."""
    return min((i for i in map(rest.find, "/?#") if i >= 0), default=len(rest))


def without_userinfo(url: str) -> str:
    """The URL without `user:password@` in its authority."""
    scheme, sep, rest = url.partition("://")
    end = _authority_end(rest)
    if not sep or "@" not in rest[:end]:
        return url
    return f"{scheme}://{rest[:end].rpartition('@')[2]}{rest[end:]}"


def redact_url(url: str) -> str:
    """The URL with its password (if any) shown as ***, for messages and logs. The user info is
    the authority up to its last `@`, as urlsplit reads it: an `@` in the path or query
    (`https://mastodon.social/@user.rss`) is not one."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    end = _authority_end(rest)
    if "@" not in rest[:end]:
        # a password with an unencoded "/" ("redis://u:pa/ss@h"): the authority ends inside
        # it, on a "port" that is not a number; hide up to the path's last "@", to be safe
        _host, colon, port = rest[:end].rpartition(":")
        path = re.split(r"[?#]", rest[end:], maxsplit=1)[0]
        if not (colon and port and not port.isdigit() and "@" in path):
            return url
        end += path.rindex("@")
        userinfo, rest = rest[:end], rest[end + 1 :]
        user = userinfo.split(":", 1)[0]
        return f"{scheme}://{user}:***@{rest}"
    userinfo, _at, host = rest[:end].rpartition("@")
    shown = f"{userinfo.split(':', 1)[0]}:***" if ":" in userinfo else "***"
    return f"{scheme}://{shown}@{host}{rest[end:]}"


# scheme://userinfo@ anywhere in a text; greedy up to the authority's last `@`, as urlsplit reads it
_USERINFO = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)([^\s/?#@]*(?:@[^\s/?#@]*)*)@")


def redact_text(text: str) -> str:
    """Every URL's password in a text (a log value, an error message) shown as ***, as
    `redact_url` shows it: `http://user:***@host/`, `http://***@host/` for a bare token."""
    if "@" not in text:
        return text

    def hide(m: re.Match[str]) -> str:
        userinfo = m.group(2)
        shown = f"{userinfo.split(':', 1)[0]}:***" if ":" in userinfo else "***"
        return f"{m.group(1)}{shown}@"

    return _USERINFO.sub(hide, text)
