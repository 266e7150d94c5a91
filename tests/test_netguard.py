import asyncio
import ipaddress

import pytest

from ingest import outcomes
from ingest.fetch import Fetcher
from ingest.netguard import AddressPolicy, is_public
from ingest.settings import FetchSettings
from tests.server import TestServer


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
    fetcher = Fetcher(FetchSettings())

    async def go() -> None:
        try:
            await fetcher.get(f"http://{host}:{server.port}/x")
        finally:
            await fetcher.aclose()

    refused = (outcomes.BlockedAddress, outcomes.BadURL, outcomes.ConnectError, outcomes.DNSError)
    with pytest.raises(refused) as info:
        asyncio.run(go())
    assert not isinstance(info.value, outcomes.ConnectError) or "non-public" in str(info.value)
    assert server.hits("/x") == []


def test_redirect_to_a_private_address_is_refused_on_the_hop(server: TestServer) -> None:
    """The first hop is allowed; the redirect to a port not on the list is not followed."""
    server.add("/r", "", status=302, headers={"Location": "http://127.0.0.1:9/private"})
    fetcher = Fetcher(FetchSettings(allow=[server.allow]))

    async def go() -> None:
        try:
            await fetcher.get(server.url("/r"))
        finally:
            await fetcher.aclose()

    with pytest.raises(outcomes.BlockedAddress):
        asyncio.run(go())
    assert len(server.hits("/r")) == 1


def test_body_cap_and_redirect_limit(server: TestServer) -> None:
    server.add("/big", b"x" * 5000)
    for i in range(8):
        server.add(f"/loop{i}", "", status=301, headers={"Location": f"/loop{i + 1}"})
    fetcher = Fetcher(FetchSettings(allow=[server.allow], max_bytes=1000, max_redirects=5))

    async def go(path: str) -> None:
        await fetcher.get(server.url(path))

    with pytest.raises(outcomes.TooLarge):
        asyncio.run(go("/big"))
    fetcher = Fetcher(FetchSettings(allow=[server.allow], max_bytes=1000, max_redirects=5))
    with pytest.raises(outcomes.TooManyRedirects):
        asyncio.run(go("/loop0"))
    assert len([h for h in server.requests if h.path.startswith("/loop")]) == 6
