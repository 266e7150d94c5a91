"""The private-address guard (SSRF), applied where it cannot be bypassed: at connect time.

Two checks, both on the fetcher's aiohttp connector:

* `GuardedResolver` resolves each host name once and returns only addresses the policy permits
  (raising `BlockedAddress` when none is), so the connector connects to the very addresses that
  were checked: a second DNS answer cannot swap in 127.0.0.1.
* `AddressPolicy.socket_factory` sees the exact address of every socket about to connect, for
  names and IP literals (which skip the resolver) alike, first request and every redirect hop.

Exceptions are by exact `host:port` (the name as written in the URL, or the resolved address).
TLS still verifies the certificate against the original host name.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult

from ingest.core.outcomes import BlockedAddress, DNSError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
BLOCKED_MARK = "non-public address"
SITE_LOCAL = ipaddress.IPv6Network("fec0::/10")  # `is_global` calls it global


def is_public(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            return is_public(mapped)
        if ip.teredo is not None:
            return is_public(ip.teredo[1])
        if ip in SITE_LOCAL:  # deprecated (RFC 3879) but still routed inside some networks
            return False
    return ip.is_global and not (
        ip.is_multicast
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_unspecified
    )


class BlockedSocket(OSError):
    """Raised inside the connector (which expects OSError); mapped back to BlockedAddress."""


class AddressPolicy:
    def __init__(self, allow: Iterable[str] = ()) -> None:
        self.allow = {entry.strip().lower() for entry in allow if entry.strip()}
        # ip:port pairs that an allowed *name* resolved to, for the connect-time check
        self._pinned: set[str] = set()

    def permits(self, host: str, port: int, ip: IPAddress) -> bool:
        if is_public(ip):
            return True
        host = host.lower().strip("[]")
        candidates = {f"{host}:{port}", f"{ip}:{port}", f"[{ip}]:{port}"}
        if candidates.isdisjoint(self.allow):
            return False
        self._pinned.add(f"{ip}:{port}")
        return True

    def socket_factory(self, addr_info: Any) -> socket.socket:
        family, type_, proto, _canon, sockaddr = addr_info
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        port = int(sockaddr[1])
        if not (is_public(ip) or f"{ip}:{port}" in self._pinned or self.permits(str(ip), port, ip)):
            raise BlockedSocket(f"connection to {BLOCKED_MARK} {ip}:{port} refused")
        sock = socket.socket(family=family, type=type_, proto=proto)
        sock.setblocking(False)
        return sock


async def resolve(host: str, port: int) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        # EAI_NONAME is an authoritative "no such name"; anything else may be our resolver.
        permanent = isinstance(exc, UnicodeError) or exc.errno == socket.EAI_NONAME
        raise DNSError(f"cannot resolve {host}: {exc}", permanent=permanent) from exc
    seen: dict[str, IPAddress] = {}
    for _family, _type, _proto, _canon, sockaddr in infos:
        addr = str(sockaddr[0]).split("%", 1)[0]
        seen.setdefault(addr, ipaddress.ip_address(addr))
    return list(seen.values())


class GuardedResolver(AbstractResolver):
    def __init__(self, policy: AddressPolicy) -> None:
        self.policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await resolve(host, port)
        permitted = [ip for ip in addresses if self.policy.permits(host, port, ip)]
        if not permitted:
            shown = ", ".join(str(ip) for ip in addresses)
            raise BlockedAddress(f"{host}:{port} resolves to a {BLOCKED_MARK} ({shown})")
        return [
            ResolveResult(
                hostname=host,
                host=str(ip),
                port=port,
                family=socket.AF_INET6 if ip.version == 6 else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for ip in permitted
        ]

    async def close(self) -> None:
        return None
