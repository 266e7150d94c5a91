"""Named outcomes for everything that can go wrong with a fetch or a parse.

A log line or a metric names the outcome, never a stack trace. The tree:

    FetchError                     (outcome)
    ├── BadScheme                  bad_scheme
    │   └── BadURL                 bad_url
    ├── BlockedAddress             blocked_address
    ├── DNSError                   dns_error
    ├── ConnectError               connect_error
    │   └── Truncated              truncated
    ├── Timeout                    timeout
    ├── TooLarge                   too_large
    ├── TooManyRedirects           too_many_redirects
    ├── HostDeferred               host_deferred (our own politeness: the host's next slot is far)
    │   └── RobotsUnavailable      robots_unavailable (robots.txt 5xx/unreachable: later)
    ├── RobotsDisallowed           robots_disallowed
    ├── HTTPStatusError            http_error
    │   ├── Gone                   gone          (404/410: the URL is not coming back soon)
    │   ├── RateLimited            rate_limited  (429, 503 + Retry-After)
    │   └── BotWall                bot_wall      (challenge pages; not the feed's fault)
    └── ContentError
        ├── NotHTML                not_html
        ├── EmptyBody              empty
        ├── MalformedFeed          malformed_feed
        ├── DecodeError            decode_error
        ├── NotArticle             not_article
        └── Paywall                paywall
"""

from __future__ import annotations


class FetchError(Exception):
    outcome = "failed"
    #: True when the failure says nothing about the feed's health (our side or a bot wall)
    blameless = False

    def __init__(self, message: str = "", *, url: str = "") -> None:
        super().__init__(message or self.outcome)
        self.url = url


class BadScheme(FetchError):
    outcome = "bad_scheme"


class BadURL(BadScheme):
    outcome = "bad_url"  # unparseable, or a host in a notation we refuse to guess (127.1)


class BlockedAddress(FetchError):
    outcome = "blocked_address"


class DNSError(FetchError):
    outcome = "dns_error"

    def __init__(self, message: str = "", *, url: str = "", permanent: bool = False) -> None:
        super().__init__(message, url=url)
        self.permanent = permanent


class ConnectError(FetchError):
    outcome = "connect_error"


class Truncated(ConnectError):
    outcome = "truncated"  # the connection ended before the declared body did


class Timeout(FetchError):
    outcome = "timeout"


class TooLarge(FetchError):
    outcome = "too_large"


class TooManyRedirects(FetchError):
    outcome = "too_many_redirects"


class HostDeferred(FetchError):
    outcome = "host_deferred"
    blameless = True

    def __init__(self, message: str = "", *, url: str = "", retry_after: float = 0) -> None:
        super().__init__(message or f"host busy for {retry_after:.0f}s", url=url)
        self.retry_after = retry_after


class RobotsDisallowed(FetchError):
    outcome = "robots_disallowed"
    blameless = True


class RobotsUnavailable(HostDeferred):
    outcome = "robots_unavailable"  # robots.txt answered 5xx or not at all: ask again later


class HTTPStatusError(FetchError):
    outcome = "http_error"

    def __init__(self, message: str = "", *, url: str = "", status: int = 0) -> None:
        super().__init__(message or f"HTTP {status}", url=url)
        self.status = status


class Gone(HTTPStatusError):
    outcome = "gone"


class RateLimited(HTTPStatusError):
    outcome = "rate_limited"
    blameless = True

    def __init__(
        self, message: str = "", *, url: str = "", status: int = 429, retry_after: float = 0
    ) -> None:
        super().__init__(message, url=url, status=status)
        self.retry_after = retry_after


class BotWall(HTTPStatusError):
    outcome = "bot_wall"
    blameless = True


class ContentError(FetchError):
    outcome = "content_error"


class NotHTML(ContentError):
    outcome = "not_html"


class EmptyBody(ContentError):
    outcome = "empty"


class MalformedFeed(ContentError):
    outcome = "malformed_feed"


class DecodeError(ContentError):
    outcome = "decode_error"


class NotArticle(ContentError):
    outcome = "not_article"


class Paywall(ContentError):
    outcome = "paywall"
