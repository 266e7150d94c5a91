"""The house rules of the source tree (issue 17), as a test: the layout shows the architecture.

- `workers/` imports from `ingest.core` only, so the worker side can be read, packaged or
  scaled on its own; `ingest.core` imports nothing of the project above it.
- No module over 400 lines in `ingest/` or `workers/`; only a handful of modules flat in `ingest/`.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 400
FLAT = {"__init__", "runner", "supervisor", "once", "status", "metrics", "explain"}


def project_imports(path: Path) -> set[str]:
    """Every `ingest...`/`workers...` module a file imports, at any depth (lazy imports too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in found if m.split(".")[0] in ("ingest", "workers")}


def allowed_for_core(module: str) -> bool:
    return module.startswith("ingest.core.") or module == "ingest.__version__"


def test_workers_import_only_the_core() -> None:
    wrong = {
        f"{path.relative_to(ROOT)}: {m}"
        for path in (ROOT / "workers").rglob("*.py")
        for m in project_imports(path)
        if not (allowed_for_core(m) or m.startswith("workers."))
    }
    assert not wrong, sorted(wrong)


def test_the_core_imports_nothing_above_it() -> None:
    wrong = {
        f"{path.relative_to(ROOT)}: {m}"
        for path in (ROOT / "ingest" / "core").rglob("*.py")
        for m in project_imports(path)
        if not allowed_for_core(m)
    }
    assert not wrong, sorted(wrong)


def test_no_module_is_a_house_of_its_own() -> None:
    big = {
        f"{path.relative_to(ROOT)}: {n}"
        for top in ("ingest", "workers")
        for path in (ROOT / top).rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not big, sorted(big)


def test_only_a_handful_of_modules_are_flat_in_ingest() -> None:
    flat = {p.stem for p in (ROOT / "ingest").glob("*.py")}
    assert flat <= FLAT, sorted(flat - FLAT)
    packages = {p.name for p in (ROOT / "ingest").iterdir() if (p / "__init__.py").is_file()}
    assert packages == {"core", "feeds", "net", "poller", "cli"}, packages
