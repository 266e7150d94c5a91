"""Settings: packaged defaults, the overrides above them, where state goes, and one resolved
Settings handed to every role (no environment side effect)."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

import pytest
import redis

from ingest.core import settings as settings_mod
from ingest.core.keys import Keys
from ingest.core.settings import Settings, load, packaged, state_home
from ingest.feeds.feedlist import FeedSpec
from ingest.feeds.registry import Registry
from tests import pages
from tests.conftest import ROOT, cli
from tests.helpers import poll, settings_for
from tests.server import TestServer


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with no config/, and no NEWS_INGEST_* in the environment."""
    for name in list(os.environ):
        if name.startswith("NEWS_INGEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_packaged_defaults_are_the_model_defaults() -> None:
    """The shipped settings.toml documents every default; it must say what the code does."""
    shipped = tomllib.loads(packaged("settings.toml").read_text())
    for section, fields in shipped.items():
        model = Settings.model_fields[section].annotation
        assert model is not None
        for name, value in fields.items():
            assert model.model_fields[name].default == value, f"{section}.{name}"
    assert set(shipped) == set(Settings.model_fields)


def test_defaults_come_from_the_package(elsewhere: Path) -> None:
    s = load()
    taxonomy = Path(s.classify.taxonomy)
    assert taxonomy == packaged("taxonomy.yaml") and taxonomy.is_file()
    assert taxonomy.parent == Path(settings_mod.__file__).parents[1] / "defaults"
    assert s.poll.min_interval == 120


def test_a_local_config_dir_overrides_the_packaged_defaults(elsewhere: Path) -> None:
    (elsewhere / "config").mkdir()
    (elsewhere / "config" / "settings.toml").write_text("[poll]\nmin_interval = 300\n")
    (elsewhere / "config" / "taxonomy.yaml").write_text("topics: {}\n")
    (elsewhere / "config" / "feeds.yaml").write_text("feeds: []\n")
    s = load()
    assert s.poll.min_interval == 300
    assert s.poll.max_interval == 21600  # what the file does not name stays the default
    assert Path(s.classify.taxonomy).resolve() == (elsewhere / "config" / "taxonomy.yaml")
    assert settings_mod.default_file("feeds.yaml") == Path("config/feeds.yaml")


def test_the_packaged_example_feeds_are_never_registered_unasked(
    r: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    """They are real public sites: `run`/`poll` without --feeds or a config/feeds.yaml register
    nothing (and so never look a public name up)."""
    done = cli("--redis-url", redis_url, "poll", "--once", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert Registry(r, Keys()).all() == []
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "feeds.yaml").write_text("feeds:\n  - url: http://127.0.0.1:9/a.xml\n")
    done = cli("--redis-url", redis_url, "feeds", "list", "--json", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout == ""  # listing registers nothing either
    done = cli("--redis-url", redis_url, "poll", "--once", cwd=tmp_path,
               env={"NEWS_INGEST_FETCH_TIMEOUT": "1"})  # fmt: skip
    assert [row["url"] for row in Registry(r, Keys()).all()] == ["http://127.0.0.1:9/a.xml"]


def test_precedence_file_env_flag(elsewhere: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (elsewhere / "config").mkdir()
    (elsewhere / "config" / "settings.toml").write_text("[poll]\nmin_interval = 300\n")
    named = elsewhere / "named.toml"
    named.write_text("[poll]\nmin_interval = 400\nmax_items = 7\n")
    assert load(str(named)).poll.min_interval == 400  # --config beats config/
    monkeypatch.setenv("NEWS_INGEST_CONFIG", str(named))
    assert load().poll.min_interval == 400  # so does NEWS_INGEST_CONFIG
    monkeypatch.setenv("NEWS_INGEST_POLL_MIN_INTERVAL", "500")
    s = load()
    assert (s.poll.min_interval, s.poll.max_items) == (500, 7)  # the environment beats files
    assert s.with_overrides(poll={"min_interval": 600}).poll.min_interval == 600  # flags beat all
    with pytest.raises(ValueError, match="no such settings file"):
        load(str(elsewhere / "missing.toml"))


def test_old_config_paths_still_find_the_packaged_files(elsewhere: Path) -> None:
    """A settings file written for the checkout layout (`config/taxonomy.yaml`)."""
    old = elsewhere / "old.toml"
    old.write_text('[classify]\ntaxonomy = "config/taxonomy.yaml"\n')
    assert Path(load(str(old)).classify.taxonomy) == packaged("taxonomy.yaml")


def test_load_has_no_side_effect_on_the_environment(elsewhere: Path) -> None:
    named = elsewhere / "named.toml"
    named.write_text("[poll]\nmin_interval = 400\n")
    before = dict(os.environ)
    assert load(str(named)).poll.min_interval == 400
    assert dict(os.environ) == before
    assert load().poll.min_interval == 120  # the next load does not inherit the file


def test_state_home(elsewhere: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWS_INGEST_HOME", str(elsewhere / "state"))
    assert state_home() == elsewhere / "state"
    assert load().redis.data_dir == str(elsewhere / "state" / "valkey")
    monkeypatch.delenv("NEWS_INGEST_HOME")
    assert state_home() == ROOT / "var"  # this checkout
    monkeypatch.setattr(settings_mod, "checkout", lambda: None)  # an installed package
    monkeypatch.setenv("XDG_DATA_HOME", str(elsewhere / "xdg"))
    assert state_home() == elsewhere / "xdg" / "news-ingest"
    assert not str(state_home()).startswith(str(Path(settings_mod.__file__).parent))


def test_config_after_the_subcommand_keeps_the_files_redis_url(
    r: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    """18.7: `feeds list --config f` used to replace the file's redis.url with ""."""
    Registry(r, Keys()).add(FeedSpec("http://127.0.0.1:9/only.xml"))
    conf = tmp_path / "s.toml"
    conf.write_text(f'[redis]\nurl = "{redis_url}"\n')
    home = {"NEWS_INGEST_HOME": str(tmp_path / "home")}  # an embedded server would start here
    for args in (("feeds", "list", "--json", "--config", str(conf)),
                 ("--config", str(conf), "feeds", "list", "--json")):  # fmt: skip
        done = cli(*args, env=home, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
        assert [json.loads(line)["url"] for line in done.stdout.splitlines()] == [
            "http://127.0.0.1:9/only.xml"
        ]
    assert not (tmp_path / "home").exists()
    missing = cli("feeds", "list", "--config", str(tmp_path / "nope.toml"), cwd=tmp_path)
    assert missing.returncode != 0 and "Traceback" not in missing.stderr


def test_the_workers_run_with_the_settings_they_are_handed(
    server: TestServer, r: redis.Redis
) -> None:
    """18.7: overrides that exist only in the Settings object (flags) reach the pipeline."""
    from ingest import runner
    from workers import jobs

    server.add("/a", pages.article_page("Story", pages.distinct_story(1)))
    server.add("/f.xml", pages.rss("F", [{"title": "Story", "link": server.url("/a")}]),
               "application/rss+xml")  # fmt: skip
    s = settings_for(server).with_overrides(redis={"prefix": "p18:"}, stream={"queue": "q18"})
    register_with = Registry(r, Keys("p18:"))
    register_with.add(FeedSpec(server.url("/f.xml")))
    poll(s, r)
    try:
        runner.run_worker(s, r, burst=True)
    finally:
        jobs._settings.clear()  # other tests in this process build their own
    assert r.xlen("p18:articles") == 1
    assert not r.exists("news:articles")


def test_an_unusable_state_home_is_a_one_line_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    done = cli("feeds", "list", env={"NEWS_INGEST_HOME": str(blocker / "home")}, cwd=tmp_path)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "set NEWS_INGEST_HOME" in done.stderr and str(blocker / "home") in done.stderr
