"""A topic model trained on the operator's own labels: hashed word and bigram features and a
linear classifier (scikit-learn), saved as plain arrays (`.npz`: no pickle, nothing executes on
load). The lexicon stays the fallback when the model is unsure or not configured.

`--self-label` trains on an unlabelled archive labelled by the lexicon where it is confident:
the model then learns the vocabulary that co-occurs with the lexicon's terms in the operator's
own sources, which generalises past the hand-written terms. Such a model is an extension of the
lexicon, not a replacement: its probabilities are averaged with the lexicon's scores (alone it
measured no better than the lexicon; blended, +0.4 to +3.4 points; docs/benchmarks.md). A
model trained on the operator's own labels answers alone when it is sure, and is never pulled
towards the lexicon.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workers import classify

N_FEATURES = 2**16
BODY_CHARS = 6000


def _vectorizer(n_features: int) -> Any:
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(n_features=n_features, alternate_sign=False, ngram_range=(1, 2),
                             norm="l2", lowercase=True)  # fmt: skip


def document(title: str, text: str) -> str:
    return f"{title} {title} {text[:BODY_CHARS]}"  # the title counts twice, as in the lexicon


@dataclass
class TopicModel:
    classes: list[str]
    coef: np.ndarray
    intercept: np.ndarray
    n_features: int = N_FEATURES
    self_labelled: bool = False  # trained on the lexicon's labels: blended with it

    def __post_init__(self) -> None:
        self._vec = _vectorizer(self.n_features)

    def scores(self, title: str, text: str) -> dict[str, float]:
        x = self._vec.transform([document(title, text)])
        logits = np.asarray(x @ self.coef.T).ravel() + self.intercept
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        return {c: float(p) for c, p in zip(self.classes, probs, strict=True)}

    def top(self, title: str, text: str, min_score: float = 0.0) -> str | None:
        scores = self.scores(title, text)
        best = max(scores, key=scores.__getitem__)
        return best if scores[best] >= min_score else None

    def save(self, path: str | Path) -> None:
        np.savez_compressed(path, classes=np.array(self.classes), coef=self.coef.astype(np.float32),
                            intercept=self.intercept.astype(np.float32),
                            n_features=np.array([self.n_features]),
                            self_labelled=np.array([int(self.self_labelled)]))  # fmt: skip

    @classmethod
    def load(cls, path: str | Path) -> TopicModel:
        with np.load(path, allow_pickle=False) as data:
            self_labelled = "self_labelled" in data and bool(data["self_labelled"][0])
            return cls([str(c) for c in data["classes"]], data["coef"], data["intercept"],
                       int(data["n_features"][0]), self_labelled)  # fmt: skip


def train(docs: Iterable[tuple[str, str, str]], n_features: int = N_FEATURES, *,
          self_labelled: bool = False) -> TopicModel:  # fmt: skip
    """Fit on (title, text, label) triples; labels are IPTC codes (or any strings).
    Labels from the lexicon are noisy: such a model is regularised harder (C=1, not 10)."""
    from sklearn.linear_model import LogisticRegression

    triples = list(docs)
    labels = sorted({label for _t, _x, label in triples})
    if len(labels) < 2:
        raise ValueError("training needs at least two labels")
    x = _vectorizer(n_features).transform(document(t, x) for t, x, _l in triples)
    y = [label for _t, _x, label in triples]
    clf = LogisticRegression(max_iter=1000, C=1.0 if self_labelled else 10.0)
    clf.fit(x, y)
    coef, intercept = clf.coef_, clf.intercept_
    if len(clf.classes_) == 2:  # scikit-learn keeps one row for two classes
        coef, intercept = np.vstack([-coef, coef]), np.concatenate([-intercept, intercept])
    return TopicModel([str(c) for c in clf.classes_], coef.astype(np.float32),
                      intercept.astype(np.float32), n_features, self_labelled)  # fmt: skip


def self_label(lex: classify.Lexicon, docs: Iterable[tuple[str, str]],
               min_score: float = 0.35) -> list[tuple[str, str, str]]:  # fmt: skip
    """The lexicon's confident top topic as a label; unsure documents are left out."""
    out = []
    for title, text in docs:
        found = classify.topics(lex, title, text, lang=classify.language(f"{title}\n{text}"))
        if found and found[0]["score"] >= min_score:
            out.append((title, text, found[0]["code"]))
    return out


def assign(model: TopicModel, lex: classify.Lexicon, title: str, text: str, *,
           tags: list[str] | None = None, prior: str = "", max_topics: int = 3,
           min_score: float = 0.15, trust: float = 0.5, lang: str = "") -> list[dict[str, Any]]:  # fmt: skip
    """A self-labelled model's probabilities averaged with the lexicon's scores (each sums to at
    most 1, so the blend does too). A model trained on the operator's labels: its topics when it
    is sure of the first (probability >= trust), else the lexicon's, which stays the fallback."""
    scores = model.scores(title, text)
    if model.self_labelled:
        found = classify.topics(lex, title, text, tags=tags, prior=prior,
                                max_topics=len(lex.labels), min_score=0.0, lang=lang)  # fmt: skip
        blend = {code: p / 2 for code, p in scores.items()}
        for topic in found:
            blend[topic["code"]] = blend.get(topic["code"], 0.0) + topic["score"] / 2
        best = sorted(blend.items(), key=lambda kv: -kv[1])[:max_topics]
        return [{"code": code, "label": lex.labels.get(code, code), "score": round(s, 3),
                 "source": "model+lexicon"} for code, s in best if s >= min_score]  # fmt: skip
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    if not ranked or ranked[0][1] < trust:
        return classify.topics(lex, title, text, tags=tags, prior=prior, max_topics=max_topics,
                               min_score=min_score, lang=lang)  # fmt: skip
    return [{"code": code, "label": lex.labels.get(code, code), "score": round(p, 3),
             "source": "model"}
            for code, p in ranked[:max_topics] if p >= min_score]  # fmt: skip
