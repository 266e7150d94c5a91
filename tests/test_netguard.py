import asyncio
import ipaddress
import shutil
import ssl
import subprocess
import time
from pathlib import Path

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
     "0.0.0.0", "224.0.0.1", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "240.0.0.1",
     "2002:7f00:1::1",  # 6to4 wrapping 127.0.0.1 (Python calls 2002::/16 global)
     "2002:a01:203::1",  # 6to4 wrapping 10.1.2.3
     "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo whose client is 127.0.0.1
     "ff02::1", "ff0e::1",  # IPv6 multicast, link-local and global scope
     "fec0::1"],
)  # fmt: skip
def test_non_public_addresses_are_refused(addr: str) -> None:
    assert not is_public(ipaddress.ip_address(addr))


def test_public_addresses_pass() -> None:
    assert is_public(ipaddress.ip_address("93.184.216.34"))
    assert is_public(ipaddress.ip_address("2606:4700::1111"))
    # the wrappers are judged by what they wrap: a public inside passes
    assert is_public(ipaddress.ip_address("2002:5db8:d822::1"))  # 6to4 of 93.184.216.34
    assert is_public(ipaddress.ip_address("2001:0:4136:e378:8000:63bf:a247:27dd"))  # Teredo


def test_allow_list_is_by_exact_host_and_port() -> None:
    policy = AddressPolicy(["127.0.0.1:8080"])
    lo = ipaddress.ip_address("127.0.0.1")
    assert policy.permits("127.0.0.1", 8080, lo)
    assert not policy.permits("127.0.0.1", 6379, lo)
    assert not policy.permits("127.0.0.2", 8080, ipaddress.ip_address("127.0.0.2"))


@pytest.mark.parametrize(
    "entry", ["127.0.0.0/8:8080", "127.0.0.0/8", "127.0.0.1:*", "127.0.0.1", "*:8080", "*",
              "127.0.0.*:8080", "localhost"],
)  # fmt: skip
def test_allow_list_has_no_ranges_and_no_port_wildcards(entry: str) -> None:
    """An entry that is not an exact host:port permits nothing, on any port of any loopback."""
    policy = AddressPolicy([entry])
    for host in ("127.0.0.1", "127.0.0.2", "localhost"):
        for port in (80, 8080, 6379):
            ip = ipaddress.ip_address("127.0.0.1" if host == "localhost" else host)
            assert not policy.permits(host, port, ip), (entry, host, port)


def test_an_allowed_name_permits_only_its_port() -> None:
    policy = AddressPolicy(["feeds.internal:8080"])
    ip = ipaddress.ip_address("10.0.0.5")
    assert policy.permits("feeds.internal", 8080, ip)
    assert not policy.permits("feeds.internal", 8081, ip)
    assert not policy.permits("other.internal", 8080, ip)


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


def test_one_deadline_covers_every_redirect_hop(server: TestServer) -> None:
    """Three hops of 0.6 s each, every one well inside 1 s: the request as a whole times out.

    A per-hop deadline would let it through in about 1.8 s; the total one stops it on the
    second hop, and the third is never asked for.
    """
    server.add("/hop0", "", status=302, headers={"Location": "/hop1"}, delay=0.6)
    server.add("/hop1", "", status=302, headers={"Location": "/hop2"}, delay=0.6)
    server.add("/hop2", "<p>made it</p>", delay=0.6)
    settings = FetchSettings(allow=[server.allow], timeout=1.0)
    started = time.monotonic()
    with pytest.raises(outcomes.Timeout):
        fetch_once(settings, server.url("/hop0"))
    assert time.monotonic() - started < 1.0 + 5  # margin for a loaded machine
    assert server.hits("/hop2") == []


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


def fetch_many(settings: FetchSettings, urls: list[str]) -> list[bytes]:
    """GETs in turn through one Fetcher (one session), as the poller makes them."""
    fetcher = Fetcher(settings)

    async def go() -> list[bytes]:
        try:
            return [(await fetcher.get(url)).body for url in urls]
        finally:
            await fetcher.aclose()

    return asyncio.run(go())


def test_no_cookie_is_kept_between_requests(server: TestServer) -> None:
    """By a host name: aiohttp's own jar would keep this one (it drops cookies of IP hosts)."""
    server.add("/set", "<p>hi</p>", headers={"Set-Cookie": "track=me; Path=/"})
    server.add("/next", "<p>again</p>")
    site = f"http://localhost:{server.port}"
    settings = FetchSettings(allow=[f"localhost:{server.port}"])
    fetch_many(settings, [f"{site}/set", f"{site}/next"])
    assert server.hits("/set") and server.hits("/next")
    assert "cookie" not in server.hits("/next")[0].headers


def test_proxies_from_the_environment_are_ignored(
    server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy named in the environment (another loopback server) sees nothing; the site is
    asked directly."""
    proxy = TestServer().start()
    try:
        for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
            monkeypatch.setenv(name, proxy.base)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        server.add("/page", "<p>direct</p>")
        settings = FetchSettings(allow=[server.allow, proxy.allow])
        assert fetch_many(settings, [server.url("/page")]) == [b"<p>direct</p>"]
        assert proxy.requests == []
        assert len(server.hits("/page")) == 1
    finally:
        proxy.stop()


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_tls_certificates_are_verified(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A self-signed certificate is refused; the same server is fetched once its certificate is
    trusted (SSL_CERT_FILE), so the refusal is the verification, not a broken server."""
    cert, key = _self_signed(tmp_path)
    tls = TestServer()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    tls.httpd.socket = context.wrap_socket(tls.httpd.socket, server_side=True)
    tls.start()
    try:
        tls.add("/secret", "<p>over tls</p>")
        url = f"https://127.0.0.1:{tls.port}/secret"
        settings = FetchSettings(allow=[tls.allow])
        with pytest.raises(outcomes.ConnectError, match=r"(?i)certificate"):
            fetch_many(settings, [url])
        assert tls.hits("/secret") == []
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        assert fetch_many(settings, [url]) == [b"<p>over tls</p>"]
    finally:
        tls.stop()


def test_a_second_dns_answer_cannot_swap_in_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS rebinding: `rebind.test` first answers 127.0.0.2 (allowed, as a partner's internal
    server would be), then 127.0.0.1, where a second server listens on the same port. Every
    fetch reaches the first server or is refused; the second never sees a request."""
    from ingest.net import netguard

    good = TestServer("127.0.0.2").start()
    evil = _server_on(good.port)
    answers = iter(["127.0.0.2"] + ["127.0.0.1"] * 20)

    async def rebinding(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        assert host == "rebind.test"
        return [ipaddress.ip_address(next(answers))]

    monkeypatch.setattr(netguard, "resolve", rebinding)
    try:
        good.add("/x", "<p>partner</p>")
        evil.add("/x", "<p>secret</p>")
        settings = FetchSettings(allow=[f"127.0.0.2:{good.port}"])
        url = f"http://rebind.test:{good.port}/x"
        got = []
        for _ in range(3):  # a fresh session each time: nothing cached between them
            try:
                got.extend(fetch_many(settings, [url]))
            except outcomes.BlockedAddress:
                got.append(b"refused")
        assert got[0] == b"<p>partner</p>"
        assert set(got[1:]) == {b"refused"}
        assert evil.requests == []
    finally:
        good.stop()
        evil.stop()


def _server_on(port: int) -> TestServer:
    """A TestServer on 127.0.0.1 at a given port (the rebinding target)."""
    import threading

    srv = TestServer("127.0.0.1")
    handler = srv.httpd.RequestHandlerClass
    srv.httpd.server_close()
    srv.httpd = type(srv.httpd)(("127.0.0.1", port), handler)
    srv.httpd.daemon_threads = True
    srv.port = port
    srv.thread = threading.Thread(target=srv.httpd.serve_forever, daemon=True)
    return srv.start()
