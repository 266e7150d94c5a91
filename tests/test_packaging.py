"""Packaging: every import declared, one version, and the built wheel working from anywhere."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from importlib import metadata
from pathlib import Path

from ingest.core.embedded import free_port
from ingest.core.settings import Settings
from tests import pages
from tests.conftest import ROOT, cli
from tests.server import TestServer

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _name(requirement: str) -> str:
    for stop in "<>=![;( ":
        requirement = requirement.split(stop)[0]
    return requirement.strip().lower().replace("_", "-")


def _imports(*packages: str) -> set[str]:
    found = set()
    for package in packages:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    found |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"ingest", "workers", "__future__"}


def test_every_imported_package_is_declared() -> None:
    declared = {_name(d) for d in PYPROJECT["project"]["dependencies"]}
    optional = {_name(d) for d in PYPROJECT["project"]["optional-dependencies"]["train"]}
    owners = metadata.packages_distributions()
    for module in sorted(_imports("ingest", "workers")):
        dists = {_name(d) for d in owners.get(module, [module])}
        assert dists & (declared | optional), f"{module} ({dists}) is imported, not declared"


def test_one_version_source() -> None:
    version = metadata.version("news-ingest")
    assert version == PYPROJECT["project"]["version"]
    done = cli("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"news-ingest, version {version}"
    assert Settings().fetch.user_agent.startswith(f"news-ingest/{version} (+https://")
    for path in [*(ROOT / "ingest").rglob("*.py"), *(ROOT / "workers").rglob("*.py")]:
        assert f'"{version}"' not in path.read_text(), f"{path} writes the version again"
    assert (ROOT / "ingest" / "py.typed").is_file() and (ROOT / "workers" / "py.typed").is_file()


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*")}  # fmt: skip


NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def _interpreter() -> tuple[str, list[str]]:
    """The Python for the fresh venv, and how to run commands: as `nobody` when we are root and
    some Python >= 3.11 is usable by nobody (ours may live in root's home), as the issue's trial
    did; else as ourselves."""
    if os.geteuid() == 0 and shutil.which("setpriv"):
        probe = "import sys, venv; print(sys.version_info >= (3, 11), sys.version)"
        for python in (sys._base_executable, "/usr/bin/python3"):
            ours, theirs = (subprocess.run([*prefix, python, "-c", probe], capture_output=True,
                                           text=True, check=False).stdout
                            for prefix in ([], NOBODY))
            if ours.startswith("True") and ours == theirs:  # the very same interpreter for both
                return python, NOBODY
    return sys.executable, []


def test_the_wheel_works_from_an_empty_directory(server: TestServer, tmp_path: Path) -> None:
    """`pip install` of the built wheel (not editable) into a fresh venv; every command that
    reads package data or writes state runs from an empty directory, as `nobody` when the test
    runs as root; site-packages is left as installed, and state goes to the user's data dir."""
    work = Path(tempfile.mkdtemp(prefix="news-ingest-wheel-"))  # not tmp_path: 0700, root's
    work.chmod(0o755)
    try:
        _wheel_check(server, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _wheel_check(server: TestServer, tmp_path: Path) -> None:
    src = tmp_path / "src"  # a copy: building in the checkout would leave build/ behind
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("ingest", "workers"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    # nothing of this test run's own import path may leak into the fresh venv
    clean = {k: v for k, v in os.environ.items()
             if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}  # fmt: skip
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(tmp_path / "dist"), str(src)],
                   check=True, capture_output=True, timeout=300, env=clean)  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("news_ingest-*.whl")
    venv = tmp_path / "venv"
    base, user = _interpreter()
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True, env=clean)
    python = venv / "bin" / "python"
    # the deps from pip's configured (local) indexes; --no-compile saves half the install time,
    # so bytecode caching is off below: the check is for what news-ingest itself writes
    subprocess.run([*pip, "--python", str(python), "install", "--no-compile", str(wheel)],
                   check=True, capture_output=True, timeout=600, env=clean)  # fmt: skip
    site = Path(subprocess.run([str(python), "-c", "import ingest, pathlib; "
                                "print(pathlib.Path(ingest.__file__).parent.parent)"],
                               cwd=tmp_path, env=clean, check=True, capture_output=True,
                               text=True).stdout.strip())  # fmt: skip
    assert site.name == "site-packages" and site.is_relative_to(venv)
    before = _snapshot(site)

    empty = tmp_path / "empty"
    empty.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    if user:
        for path in (empty, home):
            os.chown(path, 65534, 65534)
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(home),
           "PYTHONDONTWRITEBYTECODE": "1", "NEWS_INGEST_FETCH_ALLOW": server.allow,
           "NEWS_INGEST_POLL_HOST_RATE": "0", "NEWS_INGEST_WORKER_COUNT": "1",
           "NEWS_INGEST_REDIS_EMBEDDED_PORT": str(free_port())}  # fmt: skip
    exe = str(venv / "bin" / "news-ingest")

    def run(*args: str, stdin: str | None = None) -> str:
        done = subprocess.run([*user, exe, "--log-json", *args], cwd=empty, env=env, input=stdin,
                              capture_output=True, text=True, timeout=180)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        assert "Traceback" not in done.stderr
        return done.stdout

    story = {"id": 1, "title": "Striker scores twice as champions win the league",
             "text": "The striker scored twice in the second half of the match."}  # fmt: skip
    assert json.loads(run("classify", stdin=json.dumps(story) + "\n"))["topics"]

    page = tmp_path / "page.html"
    page.write_text(pages.article_page("Bolivia", pages.paragraphs(pages.BOLIVIA)))
    extracted = json.loads(run("extract", str(page)))
    assert pages.paragraphs(pages.BOLIVIA)[0][:60] in extracted["text"]

    server.add("/a", pages.article_page("Bolivia", pages.paragraphs(pages.BOLIVIA)))
    server.add("/f.xml", pages.rss("F", [{"title": "Bolivia", "link": server.url("/a")}]),
               "application/rss+xml")  # fmt: skip
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(f"feeds:\n  - url: {server.url('/f.xml')}\n")
    summary = json.loads(run("--feeds", str(feeds), "run", "--once").splitlines()[-1])
    assert summary["enqueued"] == 1 and summary["articles"].get("published") == 1, summary

    assert _snapshot(site) == before, "something was written under site-packages"
    assert os.listdir(empty) == []  # nor in the working directory
    state = home / ".local" / "share" / "news-ingest" / "valkey"
    assert (state / "valkey.log").is_file()  # the embedded server's data: the user data dir
    if user:  # it really ran as nobody, who cannot write under site-packages at all
        assert (state / "valkey.log").stat().st_uid == 65534


def test_the_image_runs_unprivileged_with_its_state_in_a_volume() -> None:
    """What the Dockerfile says (no Docker daemon is needed to read it)."""
    lines = [line.split(None, 1) for line in (ROOT / "Dockerfile").read_text().splitlines()
             if line.strip() and not line.startswith("#")]  # fmt: skip
    directives = {(d.upper(), rest.strip()) for d, *more in lines for rest in more or [""]}
    users = [rest for d, rest in directives if d == "USER"]
    assert users and users[-1] not in ("root", "0"), users
    home = next(rest.split("=", 1)[1] for d, rest in directives
                if d == "ENV" and rest.startswith("NEWS_INGEST_HOME="))  # fmt: skip
    assert ("VOLUME", f'["{home}"]') in directives
    assert "config" not in " ".join(rest for d, rest in directives if d == "COPY")
