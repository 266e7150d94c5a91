"""The `corpus` marker: skipped with a reason without ../shared/data, an error in CI."""

from __future__ import annotations

from typing import Any

import pytest

from tests import conftest


class _Item:
    def __init__(self, corpus: bool) -> None:
        self.corpus = corpus
        self.added: list[Any] = []

    def get_closest_marker(self, name: str) -> object | None:
        return object() if name == "corpus" and self.corpus else None

    def add_marker(self, marker: Any) -> None:
        self.added.append(marker)


def test_corpus_tests_skip_with_a_reason_when_the_corpora_are_absent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(conftest, "corpus_present", lambda: False)
    monkeypatch.delenv("CI", raising=False)
    marked, plain = _Item(True), _Item(False)
    conftest.pytest_collection_modifyitems(None, [marked, plain])  # type: ignore[arg-type]
    assert [m.kwargs["reason"] for m in marked.added] == [conftest.CORPUS_SKIP]
    assert plain.added == []


def test_ci_refuses_to_skip_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "corpus_present", lambda: False)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.UsageError, match="CI runs every corpus test"):
        conftest.pytest_collection_modifyitems(None, [_Item(True)])  # type: ignore[arg-type]


def test_nothing_is_skipped_when_they_are_here(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "corpus_present", lambda: True)
    item = _Item(True)
    conftest.pytest_collection_modifyitems(None, [item])  # type: ignore[arg-type]
    assert item.added == []
