import asyncio
import ipaddress

import pytest

from ingest.core import outcomes
from ingest.core.settings import FetchSettings
from ingest.net.fetch import Fetcher
from ingest.net.netguard import AddressPolicy, is_public
from tests.server import TestServer


def fetch_once(settings: FetchSettings, url: str) -> None:
    """One GET through a fresh Fetcher, closed afterwards; raises what the fetch raises."""
    fetcher = Fetcher(settings)

    async def go() -> None:
        try:
            await fetcher.get(url)
        finally:
            await fetcher.aclose()

    asyncio.run(go())


@pytest.mark.parametrize(
    "addr",
    ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
     "0.0.0.0", "224.0.0.1", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "240.0.0.1"],
)  # fmt: skip
def test_non_public_addresses_are_refused(addr: str) -> None:
    assert not is_public(ipaddress.ip_address(addr))


def test_public_addresses_pass() -> None:
    assert is_public(ipaddress.ip_address("93.184.216.34"))
    assert is_public(ipaddress.ip_address("2606:4700::1111"))


def test_allow_list_is_by_exact_host_and_port() -> None:
    policy = AddressPolicy(["127.0.0.1:8080"])
    lo = ipaddress.ip_address("127.0.0.1")
    assert policy.permits("127.0.0.1", 8080, lo)
    assert not policy.permits("127.0.0.1", 6379, lo)


@pytest.mark.parametrize(
    "host", ["127.1", "2130706433", "0x7f000001", "0.0.0.0", "[::1]", "localhost"]
)
def test_odd_notations_of_loopback_are_refused_at_connect_time(
    server: TestServer, host: str
) -> None:
    server.add("/x", "secret")
    refused = (outcomes.BlockedAddress, outcomes.BadURL, outcomes.ConnectError, outcomes.DNSError)
    with pytest.raises(refused) as info:
        fetch_once(FetchSettings(), f"http://{host}:{server.port}/x")
    assert not isinstance(info.value, outcomes.ConnectError) or "non-public" in str(info.value)
    assert server.hits("/x") == []


def test_redirect_to_a_private_address_is_refused_on_the_hop(server: TestServer) -> None:
    """The first hop is allowed; the redirect to a port not on the list is not followed."""
    server.add("/r", "", status=302, headers={"Location": "http://127.0.0.1:9/private"})
    with pytest.raises(outcomes.BlockedAddress):
        fetch_once(FetchSettings(allow=[server.allow]), server.url("/r"))
    assert len(server.hits("/r")) == 1


def test_body_cap_and_redirect_limit(server: TestServer) -> None:
    server.add("/big", b"x" * 5000)
    for i in range(8):
        server.add(f"/loop{i}", "", status=301, headers={"Location": f"/loop{i + 1}"})
    settings = FetchSettings(allow=[server.allow], max_bytes=1000, max_redirects=5)
    with pytest.raises(outcomes.TooLarge):
        fetch_once(settings, server.url("/big"))
    with pytest.raises(outcomes.TooManyRedirects):
        fetch_once(settings, server.url("/loop0"))
    assert len([h for h in server.requests if h.path.startswith("/loop")]) == 6


def test_userinfo_does_not_smuggle_a_private_host(server: TestServer) -> None:
    server.add("/x", "secret")
    with pytest.raises(outcomes.BlockedAddress):
        fetch_once(FetchSettings(), f"http://news.example.org@127.0.0.1:{server.port}/x")
    assert server.hits("/x") == []


def test_connect_time_check_sees_the_exact_address() -> None:
    """The socket factory is the last gate: whatever resolved, a socket to a private address
    is never created, while public ones and exact allow-list entries are."""
    import socket

    from ingest.net.netguard import BlockedSocket

    policy = AddressPolicy(["127.0.0.1:8080"])
    for family, addr in ((socket.AF_INET, ("127.0.0.1", 80)), (socket.AF_INET, ("10.0.0.1", 443)),
                         (socket.AF_INET6, ("::1", 80, 0, 0)),
                         (socket.AF_INET6, ("::ffff:169.254.169.254", 80, 0, 0))):  # fmt: skip
        with pytest.raises(BlockedSocket):
            policy.socket_factory((family, socket.SOCK_STREAM, 6, "", addr))
    for addr in (("127.0.0.1", 8080), ("93.184.216.34", 443)):
        policy.socket_factory((socket.AF_INET, socket.SOCK_STREAM, 6, "", addr)).close()


def test_resolver_returns_only_checked_addresses_and_pins_allowed_names() -> None:
    import socket

    from ingest.net.netguard import GuardedResolver

    async def go(allow: list[str]) -> list[str]:
        policy = AddressPolicy(allow)
        found = await GuardedResolver(policy).resolve("localhost", 8080)
        first = found[0]
        v4 = first["family"] == socket.AF_INET
        sockaddr = (first["host"], 8080) if v4 else (first["host"], 8080, 0, 0)
        # the allowed name's address was pinned: the connect-time check lets exactly it through
        policy.socket_factory((first["family"], socket.SOCK_STREAM, 6, "", sockaddr)).close()
        return [r["host"] for r in found]

    with pytest.raises(outcomes.BlockedAddress):
        asyncio.run(go([]))
    hosts = asyncio.run(go(["localhost:8080"]))
    assert hosts and all(ipaddress.ip_address(h).is_loopback for h in hosts)
