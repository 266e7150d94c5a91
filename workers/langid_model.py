"""py3langid's model, loaded in a third of the time after the first load.

The model ships LZMA-compressed (4.5 MB, 68 MB unpacked); unpacking it costs about 0.5 s of CPU
in every process that starts, most of a worker's start-up after its imports. The first load
writes the unpacked arrays to a cache file, named for py3langid's version and the model file's
size; later loads read that. Any problem with the cache (a read-only home, a damaged
or foreign file, a model layout that changed) falls back to py3langid's own loader: the cache
can only make start-up faster, never change an answer.

The cache lives in `$NEWS_INGEST_CACHE_DIR`, else `$XDG_CACHE_HOME/news-ingest`, else
`~/.cache/news-ingest`. Writing a new one removes the files of earlier versions.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from array import array
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import structlog

log = structlog.get_logger("workers.langid_model")

_TYPECODE = {2: "H", 4: "I", 8: "L"}  # the stdlib array type py3langid keeps its tables in
Parts = tuple[Any, Any, list[str], "array[int]", "array[int]", list[int]]


def cache_dir() -> Path:
    if os.environ.get("NEWS_INGEST_CACHE_DIR"):
        return Path(os.environ["NEWS_INGEST_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "news-ingest"


def cache_path(source: Path) -> Path:
    stat = source.stat()
    version = metadata.version("py3langid")
    # not the mtime: two virtualenvs with the same py3langid share one file instead of each
    # removing the other's as stale
    return cache_dir() / f"py3langid-{version}-{stat.st_size}.npz"


def _as_array(values: np.ndarray) -> array[int]:
    out = array(_TYPECODE[values.dtype.itemsize])
    out.frombytes(np.ascontiguousarray(values).tobytes())
    return out


def _read(path: Path) -> Parts:
    with np.load(path, allow_pickle=False) as data:
        ptc, pc = data["ptc"], data["pc"]
        classes = [str(c) for c in data["classes"].tolist()]
        nextmove, row = _as_array(data["nextmove"]), _as_array(data["row"])
        output = data["output"].tolist()
    if not (ptc.shape[1] == len(pc) == len(classes) and len(row) == len(output)):
        raise ValueError("cached model tables do not fit together")
    return ptc, pc, classes, nextmove, row, output


def _write(path: Path, parts: Parts) -> None:
    ptc, pc, classes, nextmove, row, output = parts
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            np.savez(out, ptc=ptc, pc=pc, classes=np.array(classes), nextmove=np.asarray(nextmove),
                     row=np.asarray(row), output=np.asarray(output, dtype=np.int32))  # fmt: skip
        os.replace(tmp, path)  # atomic: a concurrent reader sees the whole file or none
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _remove_stale(path)


def _remove_stale(current: Path) -> None:
    """A new cache file means py3langid or its model changed: the old 68 MB files are dead."""
    for old in current.parent.glob("py3langid-*.npz"):
        if old != current:
            try:
                old.unlink()
            except OSError as exc:  # another user's file, or already gone: not ours to insist
                log.info("langid_cache_stale_kept", path=str(old), error=str(exc))


def load(norm_probs: bool = True) -> Any:
    """A py3langid LanguageIdentifier over its bundled model."""
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier
    from py3langid.modelio import load_model

    source = Path(MODEL_DIR) / MODEL_FILE
    parts: Parts | None = None
    try:
        cached = cache_path(source)
        if cached.exists():
            parts = _read(cached)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("langid_cache_unreadable", error=str(exc))
    if parts is None:
        parts = load_model(source)
        try:
            _write(cache_path(source), parts)
        except OSError as exc:  # a read-only home: every start pays the unpacking
            log.info("langid_cache_not_written", error=str(exc))
    ptc, pc, classes, nextmove, row, output = parts
    return LanguageIdentifier(np.asarray(ptc), np.asarray(pc), classes, nextmove, output,
                              norm_probs=norm_probs, tk_row=row)  # fmt: skip
