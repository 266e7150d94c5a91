"""py3langid's model through the unpacked cache: same answers, faster start, safe fallbacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

from tests.conftest import SHARED, corpus_present
from workers import langid_model

OWN_SENTENCES = [  # ours, for a bare clone: a few languages and scripts
    "The council will meet again next week to discuss the budget.",
    "Le conseil municipal se réunira la semaine prochaine pour discuter du budget.",
    "Der Stadtrat trifft sich nächste Woche, um über den Haushalt zu sprechen.",
    "El ayuntamiento se reunirá la próxima semana para debatir el presupuesto.",
    "Il consiglio comunale si riunirà la prossima settimana per discutere il bilancio.",
    "De gemeenteraad komt volgende week bijeen om de begroting te bespreken.",
    "Городской совет соберётся на следующей неделе, чтобы обсудить бюджет.",
    "市议会将于下周开会讨论预算。",
    "مجلس المدينة سيجتمع الأسبوع المقبل لمناقشة الميزانية.",
    "Baraza la jiji litakutana wiki ijayo kujadili bajeti.",
]


def sentences() -> list[str]:
    """Some of every language of the SIB-200 corpus when it is here, else our own few."""
    if not corpus_present():
        return OWN_SENTENCES
    path = SHARED / "classification" / "sib200_langid.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r["text"] for r in rows[::150]]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NEWS_INGEST_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_the_cached_model_answers_exactly_as_py3langids_own(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    first = langid_model.load()  # unpacks and writes the cache
    assert len(list(cache.glob("py3langid-*.npz"))) == 1

    def unpacking(*_args: object) -> None:
        raise AssertionError("the cache should have been read")

    monkeypatch.setattr("py3langid.modelio.load_model", unpacking)
    second = langid_model.load()
    for text in sentences():
        assert first.rank(text)[:3] == reference.rank(text)[:3] == second.rank(text)[:3]


def test_a_damaged_cache_falls_back_to_the_packaged_model(cache: Path) -> None:
    path = langid_model.cache_path(Path(MODEL_DIR) / MODEL_FILE)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 not really a zip")
    ident = langid_model.load()
    assert ident.classify("The government announced a new budget on Tuesday.")[0] == "en"
    assert path.stat().st_size > 1_000_000  # rewritten whole


def test_an_unwritable_cache_still_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache directory would be")
    monkeypatch.setenv("NEWS_INGEST_CACHE_DIR", str(blocker / "cache"))
    ident = langid_model.load()
    assert ident.classify("Le gouvernement a annoncé mardi un nouveau budget.")[0] == "fr"


def test_a_new_cache_file_removes_those_of_earlier_versions(cache: Path) -> None:
    cache.mkdir(parents=True)
    stale = cache / "py3langid-0.2.0-4500000-1.npz"
    stale.write_bytes(b"an earlier version's tables")
    unrelated = cache / "notes.txt"
    unrelated.write_text("not ours to remove")
    langid_model.load()
    current = langid_model.cache_path(Path(MODEL_DIR) / MODEL_FILE)
    assert sorted(cache.iterdir()) == sorted([current, unrelated])
