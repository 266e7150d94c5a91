"""Language and IPTC topics, offline: py3langid and an editable weighted lexicon.

Topic scoring (pure, about a thousand articles a second):
* words and phrases of `config/taxonomy.yaml` are matched in the title (weight x3) and the body;
  a term seen n times counts w * (1 + ln n), so one repeated word cannot carry a topic;
* feed tags are matched like title words, and the feed's configured topic adds a prior;
* scores become shares of (total + EVIDENCE_FLOOR), so they sum to at most 1 and stay low when
  the evidence is thin; topics under `min_score` are dropped, at most `max_topics` kept.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

TITLE_WEIGHT = 3.0
EVIDENCE_FLOOR = 4.0  # pseudo-score of "no topic": thin evidence yields low shares
PRIOR = 2.0  # the feed's configured topic
MIN_RAW = 2.0  # below this raw score a topic is not evidence at all
BODY_WORDS = 1500
_TOKEN = re.compile(r"[\w'’-]+", re.UNICODE)


def tokens(text: str) -> list[str]:
    text = unicodedata.normalize("NFC", text).lower().replace("’", "'")
    return [t.strip("'-") for t in _TOKEN.findall(text) if t.strip("'-")]


@dataclass
class Lexicon:
    labels: dict[str, str]
    exact: dict[str, list[tuple[str, float]]] = field(default_factory=lambda: defaultdict(list))
    prefix: dict[str, list[tuple[str, float]]] = field(default_factory=lambda: defaultdict(list))
    phrases: dict[str, list[tuple[str, float]]] = field(default_factory=lambda: defaultdict(list))
    prefix_lengths: set[int] = field(default_factory=set)
    phrase_starts: set[str] = field(default_factory=set)
    _memo: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def add(self, topic: str, term: str, weight: float) -> None:
        term = term.strip().lower()
        star = term.endswith("*")
        words = tokens(term.rstrip("*"))
        if not words:
            return
        if len(words) > 1:
            self.phrases[" ".join(words)].append((topic, weight))
            self.phrase_starts.add(words[0])
        elif star:
            self.prefix[words[0]].append((topic, weight))
            self.prefix_lengths.add(len(words[0]))
        else:
            self.exact[words[0]].append((topic, weight))

    def word_hits(self, tok: str) -> list[tuple[str, str]]:
        """(topic, term) pairs one word matches, exactly or by prefix; memoised, since news
        vocabulary repeats (Zipf) and this is the classifier's inner loop."""
        found = self._memo.get(tok)
        if found is None:
            found = [(topic, tok) for topic, _w in self.exact.get(tok, ())]
            for n in self.prefix_lengths:
                if len(tok) >= n:
                    stem = tok[:n]
                    found.extend((topic, stem + "*") for topic, _w in self.prefix.get(stem, ()))
            if len(self._memo) > 500_000:
                self._memo.clear()
            self._memo[tok] = found
        return found

    def hits(self, toks: list[str]) -> Counter[tuple[str, str]]:
        """(topic, term) -> count."""
        found: Counter[tuple[str, str]] = Counter()
        for i, tok in enumerate(toks):
            for key in self.word_hits(tok):
                found[key] += 1
            if tok in self.phrase_starts and i + 1 < len(toks):
                pair = tok + " " + toks[i + 1]
                for topic, _w in self.phrases.get(pair, ()):
                    found[topic, pair] += 1
                if i + 2 < len(toks):
                    triple = pair + " " + toks[i + 2]
                    for topic, _w in self.phrases.get(triple, ()):
                        found[topic, triple] += 1
        return found

    def weight(self, topic: str, term: str) -> float:
        table = self.prefix if term.endswith("*") else (self.phrases if " " in term else self.exact)
        key = term.rstrip("*")
        return max((w for t, w in table.get(key, ()) if t == topic), default=1.0)


def load_lexicon(path: str | Path) -> Lexicon:
    doc = yaml.safe_load(Path(path).read_text("utf-8"))
    topics: dict[str, Any] = doc["topics"]
    lex = Lexicon(labels={code: str(t.get("label", code)) for code, t in topics.items()})
    for code, spec in topics.items():
        for key, terms in spec.items():
            if key == "label" or not terms:
                continue
            items = terms.items() if isinstance(terms, dict) else ((t, 1.0) for t in terms)
            for term, weight in items:
                if isinstance(term, dict):  # "- term: 2.0" in a list
                    for t, w in term.items():
                        lex.add(code, str(t), float(w))
                else:
                    lex.add(code, str(term), float(weight))
    return lex


@lru_cache(maxsize=4)
def cached_lexicon(path: str) -> Lexicon:
    return load_lexicon(path)


def topic_scores(
    lex: Lexicon, title: str, text: str, tags: list[str] | None = None, prior: str = ""
) -> dict[str, float]:
    raw: defaultdict[str, float] = defaultdict(float)
    for weight, toks in (
        (TITLE_WEIGHT, tokens(title) + tokens(" ; ".join(tags or []))),
        (1.0, tokens(text)[:BODY_WORDS]),
    ):
        for (topic, term), count in lex.hits(toks).items():
            raw[topic] += weight * lex.weight(topic, term) * (1 + math.log(count))
    if prior in lex.labels:
        raw[prior] += PRIOR
    return dict(raw)


def topics(
    lex: Lexicon, title: str, text: str, *, tags: list[str] | None = None, prior: str = "",
    max_topics: int = 3, min_score: float = 0.15,
) -> list[dict[str, Any]]:  # fmt: skip
    raw = {t: s for t, s in topic_scores(lex, title, text, tags, prior).items() if s >= MIN_RAW}
    if not raw:
        return []
    denom = sum(raw.values()) + EVIDENCE_FLOOR
    ranked = sorted(raw.items(), key=lambda kv: -kv[1])[:max_topics]
    return [
        {"code": code, "label": lex.labels[code], "score": round(score / denom, 3)}
        for code, score in ranked
        if score / denom >= min_score
    ]


# ---------------------------------------------------------------- language


@lru_cache(maxsize=8)
def _identifier(languages: tuple[str, ...]) -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    if languages:
        ident.set_languages(list(languages))
    return ident


def language(text: str, *, declared: str = "", allowed: tuple[str, ...] = (),
             min_prob: float = 0.5) -> str:  # fmt: skip
    """ISO 639-1 code of `text` (first ~1000 chars), the feed's declared language as a prior."""
    sample = text[:1000]
    if len(sample.strip()) < 20:
        return declared or "und"
    ident = _identifier(tuple(sorted(allowed)))
    lang, prob = ident.classify(sample)
    if declared and declared != lang and prob < 0.95:
        ranked = dict(ident.rank(sample)[:5])
        if ranked.get(declared, 0.0) >= 0.1:
            return declared
    lang = {"no": "nb"}.get(lang, lang)  # ISO 639-1 for Norwegian Bokmål
    return str(lang) if prob >= min_prob else "und"
