"""The private-address guard (SSRF), applied where it cannot be bypassed: at connect time.

`GuardedBackend` is an httpcore network backend. Every TCP connection httpx opens, the first
request and every redirect hop alike, goes through `connect_tcp`, which resolves the host once,
refuses non-public addresses and connects to the very address it checked (so a second DNS answer
cannot swap in 127.0.0.1). TLS still verifies the certificate against the original host name.
Exceptions are by exact `host:port` (the name as written in the URL, or the resolved address).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable

import httpcore

from ingest.outcomes import BlockedAddress, DNSError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_public(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            return is_public(mapped)
        if ip.teredo is not None:
            return is_public(ip.teredo[1])
    return ip.is_global and not (
        ip.is_multicast
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_unspecified
    )


class AddressPolicy:
    def __init__(self, allow: Iterable[str] = ()) -> None:
        self.allow = {entry.strip().lower() for entry in allow if entry.strip()}

    def permits(self, host: str, port: int, ip: IPAddress) -> bool:
        if is_public(ip):
            return True
        host = host.lower().strip("[]")
        candidates = {f"{host}:{port}", f"{ip}:{port}", f"[{ip}]:{port}"}
        return not candidates.isdisjoint(self.allow)


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


class GuardedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, policy: AddressPolicy) -> None:
        self.policy = policy
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await resolve(host, port)
        permitted = [ip for ip in addresses if self.policy.permits(host, port, ip)]
        if not permitted:
            shown = ", ".join(str(ip) for ip in addresses)
            raise BlockedAddress(f"{host}:{port} resolves to a non-public address ({shown})")
        return await self.inner.connect_tcp(
            str(permitted[0]), port, timeout, local_address, socket_options
        )

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)
