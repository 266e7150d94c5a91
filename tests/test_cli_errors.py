"""Bad input on the command line gets one line of error and a non-zero exit, never a traceback
(issue 15 #9 and #10): one case per input the attacker tried."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.core.embedded import free_port
from tests import pages
from tests.conftest import cli
from tests.server import TestServer


def one_line_error(out: object) -> str:
    stderr = out.stderr  # type: ignore[attr-defined]
    assert out.returncode != 0, out  # type: ignore[attr-defined]
    assert "Traceback" not in stderr, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, stderr[-3000:]
    return errors[0]


CASES = [
    (["--redis-url", "notaurl", "status"], "--redis-url"),
    (["--redis-url", "{redis}/99", "status"], "--redis-url"),
    (["--redis-url", "{redis}", "deadletter", "show", "not-an-id"], "not a stream id"),
    (["--redis-url", "{redis}", "deadletter", "list", "--since", "99999999999d"], "before 1970"),
    (["--redis-url", "{redis}", "explain", "--scan", "-1", "http://127.0.0.1/a"], "--scan"),
    (["--redis-url", "{redis}", "explain", "http://[::1"], "not an http(s) URL"),
    (["--redis-url", "{redis}", "status", "--watch", "-1"], "--watch"),
    (["--redis-url", "{redis}", "run", "--metrics-port", "99999"], "--metrics-port"),
    (["--log-level", "bogus", "status"], "--log-level"),
    (["--redis-url", "{redis}", "feeds", "add", "--no-check", "http://[::1"], "not an http(s) URL"),
    (["--redis-url", "{redis}", "tail", "--count", "-1"], "--count"),  # exited 0, silently
    (["--redis-url", "{redis}", "tail", "--count", "1", "--block", "-1"], "--block"),
]


@pytest.mark.parametrize(("args", "said"), CASES, ids=[" ".join(a[2:] if a[0] == "--redis-url"
                                                                else a) for a, _ in CASES])  # fmt: skip
def test_bad_input_is_one_line_and_a_non_zero_exit(args: list[str], said: str,
                                                   redis_url: str) -> None:  # fmt: skip
    out = cli(*(a.replace("{redis}", redis_url.rsplit("/", 1)[0]) for a in args), timeout=60)
    assert said in one_line_error(out)


def test_one_bad_url_in_a_feed_list_does_not_sink_it(tmp_path: Path, redis_url: str) -> None:
    yaml_list = tmp_path / "feeds.yaml"
    yaml_list.write_text("feeds:\n  - http://[::1\n  - http://127.0.0.1:9/good.xml\n")
    opml = tmp_path / "feeds.opml"
    opml.write_text('<?xml version="1.0"?><opml version="2.0"><body>'
                    '<outline text="bad" xmlUrl="http://[::1"/>'
                    '<outline text="good" xmlUrl="http://127.0.0.1:9/good.opml.xml"/>'
                    "</body></opml>")  # fmt: skip
    for path, good in ((yaml_list, "good.xml"), (opml, "good.opml.xml")):
        out = cli("--redis-url", redis_url, "feeds", "import", str(path), timeout=60)
        assert out.returncode == 0, out.stderr[-2000:]
        assert "Traceback" not in out.stderr
        assert "feed_list_entry_skipped" in out.stderr
        listed = cli("--redis-url", redis_url, "feeds", "list", "--json", timeout=60).stdout
        assert good in listed and "[::1" not in listed


def test_run_feeds_with_a_bad_entry_runs_the_rest(
    tmp_path: Path, redis_url: str, server: TestServer
) -> None:
    good = server.add("/good.xml", pages.rss("Good", []), "application/rss+xml")
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(f"feeds:\n  - http://[::1\n  - {good}\n")
    out = cli("--redis-url", redis_url, "--feeds", str(feeds), "run", "--once",
              env={"NEWS_INGEST_FETCH_ALLOW": server.allow}, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Traceback" not in out.stderr and "feed_list_entry_skipped" in out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1])["polls"] == {"ok": 1}


def test_run_feeds_with_only_bad_entries_is_a_clear_error(tmp_path: Path, redis_url: str) -> None:
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text("feeds:\n  - http://[::1\n")
    out = cli("--redis-url", redis_url, "--feeds", str(feeds), "run", "--once", timeout=60)
    assert "not an http(s) URL" in one_line_error(out)  # nothing usable left: a clear error


def test_redis_not_reachable_never_echoes_the_password() -> None:
    url = f"redis://user:s3cret-pw@127.0.0.1:{free_port()}/0"
    out = cli("--redis-url", url, "status", timeout=60)
    line = one_line_error(out)
    assert "not reachable" in line and "s3cret-pw" not in out.stderr + out.stdout
    assert "user:***@127.0.0.1" in line


def test_extract_is_bounded_as_the_worker_is(tmp_path: Path) -> None:
    """As found: `extract bomb.html.gz` (2 MB of gzip, 2 GB of zeros) grew to 10 GB. The file is
    read up to fetch.max_bytes, the page's markup up to extract.max_tags, the extraction up to
    extract.cpu_limit, each a one-line error naming the cap; the other files still come out."""
    import gzip

    bomb = tmp_path / "bomb.html.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as f:
        for _ in range(64):
            f.write(b"\0" * (1 << 20))  # 64 MB of zeros in about 64 KB
    tags = tmp_path / "tags.html"
    tags.write_text("<html><body>" + "<p>x</p>" * 300_000 + "</body></html>")
    good = tmp_path / "good.html"
    good.write_text(pages.article_page("A good page", pages.paragraphs(pages.BOLIVIA)))
    env = {"NEWS_INGEST_FETCH_MAX_BYTES": str(8 << 20)}
    out = cli("extract", str(bomb), str(tags), str(good), env=env, timeout=60)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
    errors = out.stderr.splitlines()
    assert any("bomb.html.gz" in e and "over the 8388608-byte cap" in e for e in errors), errors
    assert any("tags.html" in e and "too_complex" in e for e in errors), errors
    assert [json.loads(line)["title"] for line in out.stdout.splitlines()] == ["A good page"]
