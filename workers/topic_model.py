"""A linear topic model over the lexicon's own words, scored with numpy alone.

Features are the words `classify.prepare` already made for the lexicon (one tokenisation for
both): the title counted twice, the first `classify.BODY_WORDS` body words, sublinear term
frequency (1 + ln n), L2-normalised. The model is a float32 matrix of one row per word seen in
training (the vocabulary *is* the pruning: a word the model never saw has no row) and one
column per topic; scoring a text is a dict look-up per distinct word, a gather of those rows
and a softmax. scikit-learn fits the matrix (`train`, the `[train]` extra) and is not needed to
score it. Files are plain arrays (`.npz`, no pickle: nothing executes on load).

`self_label` labels an unlabelled archive with the lexicon where it is confident: the model
then learns the vocabulary that co-occurs with the lexicon's terms in the operator's own
sources. Such a model is an extension of the lexicon, not a replacement: its probabilities
are averaged with the lexicon's scores (docs/benchmarks.md). A model trained on the operator's
own labels answers alone when it is sure, and is never pulled towards the lexicon.
"""

from __future__ import annotations

import io
import json
import math
import os
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np

from workers import classify, language

# The recipe, chosen on the dev sets with bench/classify.py --self-label --folds 5
# (docs/benchmarks.md): pseudo-labels where the lexicon's score is at least 0.35, C = 10,
# classes not re-balanced (balancing cost French 4-5 points), words seen in at least three
# training texts (the same accuracy as two, a third smaller file).
SELF_LABEL_MIN = 0.35
C_SELF = 10.0
C_LABELLED = 10.0
BALANCED = False
MIN_DF = 3


class ModelFormatError(ValueError):
    """Not a model file this version can read (e.g. one written before the one-pass scorer)."""


def features(p: classify.Prepared) -> dict[str, float]:
    """Word -> weight: title twice, sublinear term frequency; not normalised (the model
    normalises over the words it knows, as in training)."""
    counts = dict(p.body_counts)
    get = counts.get
    for tok, n in p.head_counts.items():
        counts[tok] = get(tok, 0) + 2 * n
    log = math.log
    return {tok: 1.0 + log(n) for tok, n in counts.items()}


@dataclass
class TopicModel:
    classes: list[str]
    vocab: list[str]
    coef: np.ndarray  # (len(vocab), len(classes)) float32
    intercept: np.ndarray  # (len(classes),) float32
    self_labelled: bool = False  # trained on the lexicon's labels: blended with it
    meta: dict[str, Any] = field(default_factory=dict)  # trained_at, documents, agreement...

    def __post_init__(self) -> None:
        # interned like the words `classify.tokens` reads: a look-up then compares identities
        self.index = {sys.intern(word): i for i, word in enumerate(self.vocab)}
        self.coef = np.ascontiguousarray(self.coef, dtype=np.float32)
        self.intercept = np.asarray(self.intercept, dtype=np.float32)

    def probabilities(self, p: classify.Prepared) -> np.ndarray:
        """The same features as `features` (title twice, 1 + ln n, L2 over known words), with
        the logarithms and the norm taken by numpy over the words the model knows."""
        counts = dict(p.body_counts)
        if p.head_counts:
            cget = counts.get
            for tok, n in p.head_counts.items():
                counts[tok] = cget(tok, 0) + 2 * n
        # the words' rows looked up by `map` in C (-1: a word the model never saw), the rest
        # in numpy: no Python code runs per word
        size = len(counts)
        rows = np.fromiter(map(self.index.get, counts, repeat(-1)), dtype=np.intp, count=size)
        known = rows >= 0
        if known.any():
            vals = np.log(np.fromiter(counts.values(), dtype=np.float32, count=size)[known])
            vals += 1.0
            vals /= np.sqrt(vals @ vals)
            logits = (vals @ self.coef[rows[known]] + self.intercept).astype(np.float64)
        else:
            logits = self.intercept.astype(np.float64)
        probs = np.exp(logits - logits.max())
        return probs / probs.sum()  # type: ignore[no-any-return]

    def scores(self, title: str, text: str, prepared: classify.Prepared | None = None,
               ) -> dict[str, float]:  # fmt: skip
        probs = self.probabilities(prepared or classify.prepare(title, text))
        return {c: float(p) for c, p in zip(self.classes, probs, strict=True)}

    def top(self, title: str, text: str, min_score: float = 0.0) -> str | None:
        scores = self.scores(title, text)
        best = max(scores, key=scores.__getitem__)
        return best if scores[best] >= min_score else None

    # ------------------------------------------------------------ files

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez_compressed(
            buf, classes=np.array(self.classes), coef=self.coef, intercept=self.intercept,
            vocab=np.frombuffer("\n".join(self.vocab).encode("utf-8"), dtype=np.uint8),
            self_labelled=np.array([int(self.self_labelled)]),
            meta=np.frombuffer(json.dumps(self.meta).encode("utf-8"), dtype=np.uint8),
        )  # fmt: skip
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> TopicModel:
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
                if "vocab" not in arrays:
                    raise ModelFormatError(
                        "a model file of the old hashed format: train it again with "
                        "`news-ingest classify train`")  # fmt: skip
                vocab = bytes(arrays["vocab"]).decode("utf-8")
                return cls(
                    [str(c) for c in arrays["classes"]], vocab.split("\n") if vocab else [],
                    arrays["coef"], arrays["intercept"], bool(arrays["self_labelled"][0]),
                    json.loads(bytes(arrays["meta"]).decode("utf-8") or "{}"),
                )  # fmt: skip
        except ModelFormatError:
            raise
        except (OSError, ValueError, KeyError, EOFError) as exc:
            raise ModelFormatError(f"not a topic model file: {exc}") from exc

    def save(self, path: str | Path) -> None:
        """Written atomically: a reader sees the old file or the new one, never half of one."""
        write_atomically(Path(path), self.to_bytes())

    @classmethod
    def load(cls, path: str | Path) -> TopicModel:
        return cls.from_bytes(Path(path).read_bytes())


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------- training


def train(docs: Iterable[tuple[str, str, str]], *, self_labelled: bool = False,
          c: float | None = None, balanced: bool = BALANCED, min_df: int = MIN_DF,
          ) -> TopicModel:  # fmt: skip
    """Fit on (title, text, label) triples; labels are IPTC codes (or any strings)."""
    triples = list(docs)
    return train_prepared([(classify.prepare(t, x), label) for t, x, label in triples],
                          self_labelled=self_labelled, c=c, balanced=balanced,
                          min_df=min_df)  # fmt: skip


def train_prepared(docs: Sequence[tuple[classify.Prepared, str]], *, self_labelled: bool = False,
                   c: float | None = None, balanced: bool = BALANCED, min_df: int = MIN_DF,
                   ) -> TopicModel:  # fmt: skip
    from scipy.sparse import csr_matrix  # type: ignore[import-untyped]
    from sklearn.linear_model import LogisticRegression

    labels = sorted({label for _p, label in docs})
    if len(labels) < 2:
        raise ValueError("training needs at least two labels")
    feats = [features(p) for p, _l in docs]
    df: dict[str, int] = {}
    for f in feats:
        for tok in f:
            df[tok] = df.get(tok, 0) + 1
    vocab = sorted(tok for tok, n in df.items() if n >= min(min_df, len(docs)))
    index = {tok: i for i, tok in enumerate(vocab)}
    rows, cols, vals = [], [], []
    for r, f in enumerate(feats):
        known = [(index[t], v) for t, v in f.items() if t in index]
        norm = math.sqrt(sum(v * v for _i, v in known)) or 1.0
        for i, v in known:
            rows.append(r)
            cols.append(i)
            vals.append(v / norm)
    x = csr_matrix((vals, (rows, cols)), shape=(len(feats), len(vocab)), dtype=np.float64)
    y = [label for _p, label in docs]
    strength = c if c is not None else (C_SELF if self_labelled else C_LABELLED)
    clf = LogisticRegression(max_iter=2000, C=strength,
                             class_weight="balanced" if balanced else None)  # fmt: skip
    clf.fit(x, y)
    coef, intercept = clf.coef_, clf.intercept_
    if len(clf.classes_) == 2:  # scikit-learn keeps one row for two classes
        coef, intercept = np.vstack([-coef, coef]) / 2, np.concatenate([-intercept, intercept]) / 2
    return TopicModel([str(k) for k in clf.classes_], vocab, coef.T.astype(np.float32),
                      intercept.astype(np.float32), self_labelled)  # fmt: skip


def self_label(lex: classify.Lexicon, docs: Iterable[tuple[str, str]],
               min_score: float = SELF_LABEL_MIN) -> list[tuple[str, str, str]]:  # fmt: skip
    """The lexicon's confident top topic as a label; unsure documents are left out."""
    out = []
    for title, text in docs:
        found = classify.topics(lex, title, text, lang=language.detect(f"{title}\n{text}"))
        if found and found[0]["score"] >= min_score:
            out.append((title, text, found[0]["code"]))
    return out


# ---------------------------------------------------------------- use


def assign(model: TopicModel, lex: classify.Lexicon, title: str, text: str, *,
           tags: list[str] | None = None, prior: str = "", max_topics: int = 3,
           min_score: float = 0.15, trust: float = 0.5, lang: str = "",
           prepared: classify.Prepared | None = None, source: str = "",
           ) -> list[dict[str, Any]]:  # fmt: skip
    """A self-labelled model's probabilities averaged with the lexicon's scores (each sums to at
    most 1, so the blend does too). A model trained on the operator's labels: its topics when it
    is sure of the first (probability >= trust), else the lexicon's, which stays the fallback.
    The text is tokenised once for both. `source`: what the topics say they came from."""
    p = prepared or classify.prepare(title, text, tags)
    probs = model.probabilities(p)
    if model.self_labelled:
        found = classify.topics(lex, title, text, tags=tags, prior=prior,
                                max_topics=len(lex.labels), min_score=0.0, lang=lang,
                                prepared=p)  # fmt: skip
        blend = {code: float(q) / 2 for code, q in zip(model.classes, probs, strict=True)}
        for topic in found:
            blend[topic["code"]] = blend.get(topic["code"], 0.0) + topic["score"] / 2
        best = sorted(blend.items(), key=lambda kv: -kv[1])[:max_topics]
        return [{"code": code, "label": lex.labels.get(code, code), "score": round(s, 3),
                 "source": source or "model+lexicon"}
                for code, s in best if s >= min_score]  # fmt: skip
    ranked = sorted(zip(model.classes, probs.tolist(), strict=True), key=lambda kv: -kv[1])
    if not ranked or ranked[0][1] < trust:
        return classify.topics(lex, title, text, tags=tags, prior=prior, max_topics=max_topics,
                               min_score=min_score, lang=lang, prepared=p)  # fmt: skip
    return [{"code": code, "label": lex.labels.get(code, code), "score": round(q, 3),
             "source": source or "model"}
            for code, q in ranked[:max_topics] if q >= min_score]  # fmt: skip
