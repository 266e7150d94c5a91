"""Topics that learn from the service's own stream: a self-labelled model per language, refitted
on a schedule, installed only when it agrees with the lexicon at least as well as the last one.

Where things live (all in Redis, so that every worker on every machine sees the same model):
* `<prefix>learn:archive:<lang>`: a LIST of the last `classify.learn_archive` (5,000) published
  texts of that language, newest first, each its title and first 8,000 characters, zstd-packed
  JSON (1.3 KB a MasakhaNEWS English text: 6.4 MB for 5,000, bench/learn.py). A worker adds
  each new story it publishes (not an update, not a near-copy), in the publish round trip.
* `<prefix>learn:model:<lang>`: the installed model (`TopicModel.to_bytes`, an `.npz`: no
  pickle), and `<prefix>learn:models`, a HASH language -> its description (JSON: version,
  trained_at, documents, agreement...). Both are written in one MULTI: a reader sees the old
  model or the new one. `<prefix>learn:stamp` changes on every install; workers read it once
  per batch and load what changed, without a restart.
* `<prefix>learn:last`: HASH language -> the last refit attempt and its outcome;
  `<prefix>metrics:learn`: counters by outcome (installed, refused, too_few, unavailable...).

Who refits: the poller's loop calls `maybe_schedule`, which enqueues one `refit_job` on the
articles queue at most every `classify.learn_check` seconds (a Redis key with that TTL, so one
poller of several enqueues it); the worker that takes the job fits under a Redis lock
(`<prefix>learn:lock`), so one machine fits at a time. A language is refitted when its model is
older than `classify.learn_every` (a day) and it has at least `classify.learn_min_texts` (300)
texts, or at once when it has that many and no model yet. `news-ingest classify refit` runs the
same refit by hand.

The gate: a fifth of the archive (chosen by a hash of the text, so the same texts each time) is
held back from training. On the `learn_gate_size` (200) held-back texts where the lexicon is most
confident (and at least as confident as a training label needs: 0.35), the share where the
model's first topic is the lexicon's is the model's agreement (fewer than 20 such texts: no
verdict, `too_few`).
The candidate is installed when its agreement is at least the installed model's on the same
texts minus `learn_tolerance` (0.02), and at least `learn_min_agreement` (0.6) for a first model;
else it is refused (logged, counted) and the installed model stays. A model trained on shuffled
labels agrees far less (0.17 English, 0.40 French on the dev texts, bench/learn.py; real
models 0.89 and 0.67) and is refused
(tests/test_learn.py::test_a_model_trained_on_shuffled_labels_is_refused).
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
import structlog
import zstandard

from ingest.core import counters
from ingest.core.keys import Keys
from ingest.core.settings import ClassifySettings, Settings
from workers import classify
from workers.topic_model import ModelFormatError, TopicModel

log = structlog.get_logger("workers.learn")

ARCHIVE_CHARS = 8000  # more than the lexicon's BODY_WORDS (1,500 words) on nearly every text
HOLDOUT_PER_100 = 20
MIN_GATE = 20  # fewer confident held-back texts than this: no verdict, no model (too_few)
LOCK_S = 1800
REFIT_FUNC = "workers.learn.refit_job"
SOURCE = "learned+lexicon"  # the topics' `source` when a learned model took part


def archive_key(keys: Keys, lang: str) -> str:
    return keys.k("learn", "archive", lang)


def model_key(keys: Keys, lang: str) -> str:
    return keys.k("learn", "model", lang)


# ---------------------------------------------------------------- the archive (worker side)


def pack(title: str, text: str) -> bytes:
    raw = json.dumps({"t": title, "x": text[:ARCHIVE_CHARS]}, ensure_ascii=False).encode()
    return zstandard.ZstdCompressor(level=3).compress(raw)


def unpack(blob: bytes) -> tuple[str, str] | None:
    """(title, text), or None for an entry that does not read (skipped, counted by the caller)."""
    try:
        doc = json.loads(zstandard.ZstdDecompressor().decompress(blob))
        return str(doc["t"]), str(doc["x"])
    except (zstandard.ZstdError, ValueError, KeyError, TypeError):
        return None


def archive(pipe: Any, keys: Keys, cfg: ClassifySettings, lang: str, title: str,
            text: str) -> None:  # fmt: skip
    """Queue this published text into its language's archive (newest first, bounded)."""
    if not cfg.learn or lang in ("", "und") or not text:
        return
    key = archive_key(keys, lang)
    pipe.lpush(key, pack(title, text))
    pipe.ltrim(key, 0, max(cfg.learn_archive, 1) - 1)
    pipe.sadd(keys.k("learn", "languages"), lang)


# ---------------------------------------------------------------- decisions (pure)


def held_back(title: str, text: str) -> bool:
    """The same texts are held back at every refit (a stable hash, not Python's)."""
    return zlib.crc32(f"{title}\n{text[:500]}".encode()) % 100 < HOLDOUT_PER_100


def gate_set(lex: classify.Lexicon, texts: Sequence[tuple[str, str]], lang: str, size: int,
             min_score: float) -> list[tuple[classify.Prepared, str]]:  # fmt: skip
    """The `size` texts the lexicon is most sure of (and at least as sure as it must be to
    give a training label), with its first topic."""
    scored = []
    for title, text in texts:
        p = classify.prepare(title, text)
        found = classify.topics(lex, title, text, lang=lang, prepared=p)
        if found and found[0]["score"] >= min_score:
            scored.append((found[0]["score"], p, found[0]["code"]))
    scored.sort(key=lambda s: -s[0])
    return [(p, code) for _s, p, code in scored[:size]]


def agreement(model: TopicModel, gate: Sequence[tuple[classify.Prepared, str]]) -> float:
    """Share of the gate's texts where the model's own first topic is the lexicon's."""
    if not gate:
        return 0.0
    right = 0
    for p, code in gate:
        probs = model.probabilities(p)
        right += model.classes[int(probs.argmax())] == code
    return right / len(gate)


def verdict(new: float, old: float | None, *, floor: float, tolerance: float) -> tuple[bool, str]:
    """Install the candidate? A first model needs `floor`; a later one must agree with the
    lexicon at least as well as the installed model (on the same texts), less `tolerance`."""
    if old is None:
        if new >= floor:
            return True, f"agreement {new:.3f} >= floor {floor:.3f}"
        return False, f"agreement {new:.3f} below floor {floor:.3f}"
    if new >= old - tolerance:
        return True, f"agreement {new:.3f} vs installed {old:.3f}"
    return False, f"agreement {new:.3f} below installed model's {old:.3f}"


def due(meta: dict[str, Any] | None, n_texts: int, cfg: ClassifySettings, now: float) -> str:
    """Why this language is (or is not) refitted now: `fit`, `too_few` or `fresh`."""
    if n_texts < cfg.learn_min_texts:
        return "too_few"
    if meta is None or now - float(meta.get("trained_at", 0)) >= cfg.learn_every:
        return "fit"
    return "fresh"


# ---------------------------------------------------------------- the refit

Trainer = Callable[[list[tuple[classify.Prepared, str]]], TopicModel]


def default_trainer(docs: list[tuple[classify.Prepared, str]]) -> TopicModel:
    from workers.topic_model import train_prepared

    return train_prepared(docs, self_labelled=True)


@dataclass
class Outcome:
    lang: str
    outcome: str  # installed | refused | too_few | fresh | too_few_labels | unavailable | locked
    detail: str = ""
    documents: int = 0
    agreement: float | None = None
    previous: float | None = None
    version: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def installed(r: redis.Redis, keys: Keys) -> dict[str, dict[str, Any]]:
    """Language -> description of its installed model."""
    raw: dict[bytes, bytes] = r.hgetall(keys.k("learn", "models"))  # type: ignore[assignment]
    out = {}
    for lang, meta in raw.items():
        try:
            out[lang.decode()] = json.loads(meta)
        except ValueError:
            continue
    return out


def refit(settings: Settings, r: redis.Redis, *, langs: Sequence[str] = (), force: bool = False,
          trainer: Trainer | None = None) -> list[Outcome]:  # fmt: skip
    """Refit the languages that are due (or `langs`; `force`: whatever their age). One machine at
    a time: under `<prefix>learn:lock`."""
    keys, cfg = Keys(settings.redis.prefix), settings.classify
    lock = keys.k("learn", "lock")
    token = f"{time.time():.6f}"
    if not r.set(lock, token, nx=True, ex=LOCK_S):
        return [Outcome("*", "locked", "another refit is running")]
    try:
        lex = classify.cached_lexicon(cfg.taxonomy)
        known = installed(r, keys)
        wanted = list(langs) or sorted(
            m.decode() for m in r.smembers(keys.k("learn", "languages")))  # type: ignore[union-attr]  # fmt: skip
        results = []
        for lang in wanted:
            result = _refit_one(settings, r, keys, lex, lang, known.get(lang), force, trainer)
            results.append(result)
            _record(r, keys, result)
        return results
    finally:
        if r.get(lock) == token.encode():
            r.delete(lock)


def _refit_one(settings: Settings, r: redis.Redis, keys: Keys, lex: classify.Lexicon, lang: str,
               meta: dict[str, Any] | None, force: bool, trainer: Trainer | None) -> Outcome:  # fmt: skip
    cfg = settings.classify
    blobs: list[bytes] = r.lrange(archive_key(keys, lang), 0, -1)  # type: ignore[assignment]
    texts = [t for t in map(unpack, blobs) if t is not None]
    why = due(meta, len(texts), cfg, time.time())
    if why == "too_few" or (why == "fresh" and not force):
        return Outcome(lang, why, f"{len(texts)} texts", documents=len(texts))
    train_texts = [t for t in texts if not held_back(*t)]
    held = [t for t in texts if held_back(*t)]
    labelled = []
    from workers.topic_model import SELF_LABEL_MIN

    for title, text in train_texts:
        p = classify.prepare(title, text)
        found = classify.topics(lex, title, text, lang=lang, prepared=p)
        if found and found[0]["score"] >= SELF_LABEL_MIN:
            labelled.append((p, found[0]["code"]))
    if len({code for _p, code in labelled}) < 2:
        return Outcome(lang, "too_few_labels", f"{len(labelled)} confident texts",
                       documents=len(labelled))  # fmt: skip
    try:
        candidate = (trainer or default_trainer)(labelled)
    except ImportError as exc:  # scikit-learn is the [train] extra
        return Outcome(lang, "unavailable", f"fitting needs scikit-learn: {exc}")
    gate = gate_set(lex, held, lang, cfg.learn_gate_size, SELF_LABEL_MIN)
    if len(gate) < MIN_GATE:
        return Outcome(lang, "too_few", f"{len(gate)} confident held-back texts",
                       documents=len(labelled))  # fmt: skip
    new = agreement(candidate, gate)
    old = None
    if meta is not None:
        current = load(r, keys, lang)
        old = agreement(current, gate) if current is not None else None
    ok, detail = verdict(new, old, floor=cfg.learn_min_agreement, tolerance=cfg.learn_tolerance)
    detail += f" on {len(gate)} held-back texts"
    if not ok:
        return Outcome(lang, "refused", detail, len(labelled), new, old)
    now = time.time()
    version = f"{lang}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(now))}"
    labels: dict[str, int] = {}
    for _p, code in labelled:
        labels[code] = labels.get(code, 0) + 1
    candidate.meta = {"version": version, "language": lang, "trained_at": now,
                      "documents": len(labelled), "archive": len(texts), "agreement": new,
                      "previous_agreement": old, "gate": len(gate), "labels": labels,
                      "vocabulary": len(candidate.vocab)}  # fmt: skip
    blob = candidate.to_bytes()
    candidate.meta["bytes"] = len(blob)
    pipe = r.pipeline(transaction=True)
    pipe.set(model_key(keys, lang), blob)
    pipe.hset(keys.k("learn", "models"), lang, json.dumps(candidate.meta))
    pipe.incr(keys.k("learn", "stamp"))
    pipe.execute()
    return Outcome(lang, "installed", detail, len(labelled), new, old, version,
                   {"bytes": len(blob)})  # fmt: skip


def _record(r: redis.Redis, keys: Keys, result: Outcome) -> None:
    pipe = r.pipeline(transaction=False)
    counters.incr(pipe, keys, "learn", result.outcome)
    if result.outcome not in ("fresh", "locked"):
        pipe.hset(keys.k("learn", "last"), result.lang, json.dumps({
            "at": time.time(), "outcome": result.outcome, "detail": result.detail,
            "documents": result.documents, "agreement": result.agreement,
            "previous": result.previous}))  # fmt: skip
    pipe.execute()
    event = {"installed": "topic_model_installed", "refused": "topic_model_refused"}.get(
        result.outcome, "topic_model_not_refitted")
    level = log.warning if result.outcome in ("refused", "unavailable") else log.info
    level(event, stage="learn", language=result.lang, outcome=result.outcome,
          detail=result.detail, documents=result.documents, agreement=result.agreement,
          previous=result.previous, version=result.version)  # fmt: skip


def load(r: redis.Redis, keys: Keys, lang: str) -> TopicModel | None:
    blob = r.get(model_key(keys, lang))
    if blob is None:
        return None
    try:
        return TopicModel.from_bytes(bytes(blob))  # type: ignore[arg-type]
    except ModelFormatError as exc:
        log.warning("topic_model_unreadable", stage="learn", language=lang, error=str(exc))
        return None


def refit_job() -> dict[str, str]:
    """The RQ job `maybe_schedule` enqueues: refit what is due, with the worker's settings."""
    from rq import get_current_job

    from workers.jobs import worker_settings

    job = get_current_job()
    assert job is not None
    return {o.lang: o.outcome for o in refit(worker_settings(), job.connection)}


# ---------------------------------------------------------------- scheduling (poller side)


def maybe_schedule(settings: Settings, r: redis.Redis, queue: Any) -> bool:
    """Enqueue a refit job if none was in the last `learn_check` seconds (across pollers)."""
    cfg = settings.classify
    if not cfg.learn:
        return False
    keys = Keys(settings.redis.prefix)
    if not r.set(keys.k("learn", "scheduled"), f"{time.time():.0f}", nx=True,
                 ex=max(int(cfg.learn_check), 1)):  # fmt: skip
        return False
    queue.enqueue_call(REFIT_FUNC, timeout=LOCK_S, result_ttl=3600, failure_ttl=7 * 86400)
    return True


def describe(r: redis.Redis, keys: Keys, now: float | None = None) -> dict[str, Any]:
    """Per language: the installed model (version, age, training size, agreement), the archive's
    size and the last refit's outcome; and the refit counters. For `status` and `/metrics`."""
    now = time.time() if now is None else now
    models = installed(r, keys)
    raw_last: dict[bytes, bytes] = r.hgetall(keys.k("learn", "last"))  # type: ignore[assignment]
    last = {}
    for code, value in raw_last.items():
        try:
            last[code.decode()] = json.loads(value)
        except ValueError:
            continue
    langs = sorted({m.decode() for m in r.smembers(keys.k("learn", "languages"))}  # type: ignore[union-attr]
                   | set(models) | set(last))  # fmt: skip
    pipe = r.pipeline(transaction=False)
    for lang in langs:
        pipe.llen(archive_key(keys, lang))
    sizes = pipe.execute()
    out = {}
    for lang, size in zip(langs, sizes, strict=True):
        meta = models.get(lang)
        out[lang] = {
            "archive": int(size),
            "model": None if meta is None else {
                "version": str(meta.get("version", "")),
                "age_seconds": round(now - float(meta.get("trained_at", now)), 1),
                "documents": int(meta.get("documents", 0)),
                "agreement": float(meta.get("agreement", 0.0)),
                "bytes": int(meta.get("bytes", 0)),
            },
            "last_refit": last.get(lang),
        }  # fmt: skip
    return {"languages": out, "refits": counters.read(r, keys, "learn")}


# ---------------------------------------------------------------- the workers' models


class LearnedModels:
    """The installed models, as one worker holds them: `refresh` reads `<prefix>learn:stamp`
    (one GET, once per batch) and loads the languages whose version changed."""

    def __init__(self, keys: Keys) -> None:
        self.keys = keys
        self.stamp: bytes | None = None
        self.models: dict[str, TopicModel] = {}

    def refresh(self, r: redis.Redis) -> None:
        stamp = r.get(self.keys.k("learn", "stamp"))
        if stamp == self.stamp:
            return
        self.stamp = stamp  # type: ignore[assignment]
        metas = installed(r, self.keys)
        for lang in [lang for lang in self.models if lang not in metas]:
            del self.models[lang]
        for lang, meta in metas.items():
            have = self.models.get(lang)
            if have is not None and have.meta.get("version") == meta.get("version"):
                continue
            model = load(r, self.keys, lang)
            if model is not None:
                self.models[lang] = model
                log.info("topic_model_loaded", stage="classify", language=lang,
                         version=model.meta.get("version"))  # fmt: skip

    def get(self, lang: str) -> TopicModel | None:
        return self.models.get(lang)
