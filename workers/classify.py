"""Language and IPTC topics, offline: py3langid and an editable weighted lexicon.

Topic scoring (pure; its speed per CPU-second, measured, is in docs/benchmarks.md):
* words and phrases of `ingest/defaults/taxonomy.yaml` are matched in the title (weight x3) and the body;
  a term seen n times counts w * (1 + ln n), so one repeated word cannot carry a topic;
* feed tags are matched like title words, and the feed's configured topic adds a prior;
* scores become shares of (total + EVIDENCE_FLOOR), so they sum to at most 1 and stay low when
  the evidence is thin; topics under `min_score` are dropped, at most `max_topics` kept.
"""

from __future__ import annotations

import math
import re
import sys
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from itertools import chain, compress
from pathlib import Path
from typing import Any

import yaml

TITLE_WEIGHT = 3.0
EVIDENCE_FLOOR = 4.0  # pseudo-score of "no topic": thin evidence yields low shares
PRIOR = 2.0  # the feed's configured topic
MIN_RAW = 2.0  # below this raw score a topic is not evidence at all
BODY_WORDS = 1500
# A word: letters/digits, with inner apostrophes and hyphens ("aujourd'hui", "covid-19"); one
# at the end is punctuation.
_TOKEN = re.compile(r"\w[\w'-]*(?<![-'])", re.UNICODE)
# French (and Italian) elided articles and pronouns: "l'économie" is the word "économie", or
# every noun starting with a vowel would miss its term. English "'s" is a possessive.
_ELISION = re.compile(r"^(?:[ldjmnstc]|qu|jusqu|lorsqu|puisqu|quoiqu|presqu)'(?=\w)", re.I)


def _unelide(t: str) -> str:
    t = _ELISION.sub("", t)
    return t[:-2] if t.endswith(("'s", "'S")) and len(t) > 3 else t


def tokens(text: str, limit: int = 0) -> list[str]:
    """Lower-cased words, except short all-capital ones (acronyms: WHO, EU, AI), which keep
    their case so that a taxonomy term written in capitals matches only the acronym. A German
    noun ("Wirtschaft") is capitalised, not all-capital: it is lowered like any word. `limit`:
    at most that many words (0: all).

    Speed: the text is split on white space (C), and each distinct piece ("l'économie,") is
    read once into its words and memoised, because news words repeat (Zipf): the regex and the
    per-word rules then run on a few hundred pieces, not every word (1.7x faster than a regex
    over the whole text on the French dev set). A word never spans white space, so the words
    are the same. Each new piece is NFC-normalised on its own (a white-space character never
    composes with what follows it, so this is NFC of the whole text) with its curly
    apostrophes made straight: a text already read costs no pass over its characters."""
    pieces = text.split()
    if limit and len(pieces) > 2 * limit:  # a piece has one word, rarely none or several
        pieces = pieces[: 2 * limit]
    words = list(chain.from_iterable(map(_PIECES.__getitem__, pieces)))
    return words[:limit] if limit and len(words) > limit else words


class _Pieces(dict[str, tuple[str, ...]]):
    """A piece of text between white space -> its words as matched (unelided, lowered or kept
    as an acronym). A dict whose misses compute the entry, so that known pieces are looked up
    by `map` in C and only new ones run Python code. Bounded: cleared past 100,000 pieces
    (~20 MB at most: a piece, its tuple and word, ~200 bytes)."""

    def __missing__(self, p: str) -> tuple[str, ...]:
        if len(self) > 100_000:
            self.clear()
        words = []
        text = p if unicodedata.is_normalized("NFC", p) else unicodedata.normalize("NFC", p)
        for t in _TOKEN.findall(text.replace("’", "'")):
            word = _unelide(t) if "'" in t else t
            # interned: the model's vocabulary is too, so its look-ups compare identities
            words.append(sys.intern(word if len(word) <= 5 and word.isupper() else word.lower()))
        found = self[p] = tuple(words)
        return found


_PIECES = _Pieces()


def _is_acronym(term: str) -> bool:
    return 2 <= len(term) <= 5 and term.isupper()


@dataclass
class Terms:
    """One language's terms (or several languages' merged), indexed for matching."""

    exact: dict[str, list[tuple[str, float]]] = field(default_factory=lambda: defaultdict(list))
    prefix: dict[str, list[tuple[str, float]]] = field(default_factory=lambda: defaultdict(list))
    phrases: dict[str, list[tuple[str, float]]] = field(default_factory=lambda: defaultdict(list))
    prefix_lengths: set[int] = field(default_factory=set)
    # word endings ("*wahl"): German compounds put the word that names the thing last
    suffix: dict[str, list[tuple[str, float]]] = field(default_factory=lambda: defaultdict(list))
    suffix_lengths: set[int] = field(default_factory=set)
    phrase_starts: set[str] = field(default_factory=set)
    _starts: dict[str, set[str]] | None = None
    _keys: _WordKeys = field(init=False, repr=False)
    weight: dict[tuple[str, str], float] = field(default_factory=dict)  # (topic, term) -> w

    def __post_init__(self) -> None:
        self._keys = _WordKeys(self)

    def add(self, topic: str, term: str, weight: float) -> None:
        term = term.strip()
        if _is_acronym(term):  # matched against the acronym only, not the word ("WHO"/"who")
            self.exact[term].append((topic, weight))
            return
        term = term.lower()
        star = term.endswith("*")
        if term.startswith("*") and not star:  # "*wahl": Landtagswahl, Bundestagswahl...
            word = term[1:].strip()
            if word:
                self.suffix[word].append((topic, weight))
                self.suffix_lengths.add(len(word))
            return
        words = tokens(term.rstrip("*"))
        if not words:
            return
        if len(words) > 1:
            self.phrases[" ".join(words)].append((topic, weight))
            self.phrase_starts.add(words[0])
            self._starts = None
            self._keys.clear()
        elif star:
            self.prefix[words[0]].append((topic, weight))
            self.prefix_lengths.add(len(words[0]))
        else:
            self.exact[words[0]].append((topic, weight))

    def merge(self, other: Terms) -> None:
        for mine, theirs in ((self.exact, other.exact), (self.prefix, other.prefix),
                             (self.suffix, other.suffix), (self.phrases, other.phrases)):  # fmt: skip
            for key, entries in theirs.items():
                mine[key].extend(entries)
        self.prefix_lengths |= other.prefix_lengths
        self.suffix_lengths |= other.suffix_lengths
        self.phrase_starts |= other.phrase_starts
        self._starts = None
        self._keys.clear()

    def word_hits(self, tok: str) -> list[tuple[str, str, float]]:
        """(topic, term, weight) for one word: its exact entry, else its longest matching prefix,
        else its longest matching ending, once per topic (`elect*` and `election` in one list do
        not count "election" twice; `auswahl: 0` beside `"*wahl"` keeps "Auswahl" out of
        politics). Not memoised here: `hits` memoises each word's keys (a tuple; the empty one,
        most words', is shared)."""
        best: dict[str, tuple[int, str, float]] = {}
        if tok.isupper():  # an acronym: its own entries, then those of the word
            for topic, w in self.exact.get(tok, ()):
                best[topic] = (99, tok, w)
            tok = tok.lower()
        for topic, w in self.exact.get(tok, ()):
            best.setdefault(topic, (len(tok) + 1, tok, w))
        for n in sorted(self.prefix_lengths, reverse=True):
            if len(tok) >= n:
                for topic, w in self.prefix.get(tok[:n], ()):
                    best.setdefault(topic, (n, tok[:n] + "*", w))
        for n in sorted(self.suffix_lengths, reverse=True):
            if len(tok) > n:  # an ending of a longer word (the word itself is an exact term)
                for topic, w in self.suffix.get(tok[-n:], ()):
                    best.setdefault(topic, (n, "*" + tok[-n:], w))
        return [(topic, term, w) for topic, (_n, term, w) in best.items()]

    def _phrase_index(self) -> dict[str, set[str]]:
        """A phrase's first word -> the second words it can have, each as read: lower case, or
        in capitals when acronym-length (a shouted headline, "PRIME MINISTER"; longer words are
        lowered by tokens() anyway)."""
        index: dict[str, set[str]] = {}
        for phrase in self.phrases:
            first, second = phrase.split(" ")[:2]
            seconds = index.setdefault(first, set())
            seconds.update((second, second.upper()) if len(second) <= 5 else (second,))
        for first in list(index):
            if len(first) <= 5:
                index[first.upper()] = index[first]
        return index

    def tally(self, toks: list[str], counts: Counter[str]) -> dict[tuple[str, str], int]:
        """(topic, term) -> times seen; `counts` is Counter(toks). The term's weight is
        `self.weight[key]`. The inner loop of topic scoring, with Python code only for the few
        words that hit a term or can start a phrase: each distinct word's keys come from a memo
        looked up by `map` in C and `compress` keeps the words that have any, and a phrase is
        looked for only at the positions of its first word (found by `list.index` in C)."""
        if self._starts is None:
            self._starts = self._phrase_index()
        known = self._keys
        if len(known) > 200_000:  # ~20 MB at most
            known.clear()
        found: dict[tuple[str, str], int] = {}
        get = found.get
        wanted = []
        for word in compress(counts, map(known.__getitem__, counts)):
            n = counts[word]
            for key in known[word]:
                if key[0] is _START:
                    wanted.append(word)
                else:
                    found[key] = get(key, 0) + n
        if wanted:
            self._phrases(toks, counts, wanted, found)
        return found

    def _phrases(self, toks: list[str], counts: Counter[str], firsts: list[str],
                 found: dict[tuple[str, str], int]) -> None:  # fmt: skip
        # only first words whose possible second word is in the text too ("la" starts a phrase,
        # but "la liga" needs "liga"): then only their positions are visited
        starts = self._starts or {}
        wanted = {w for w in firsts if any(map(counts.__contains__, starts[w]))}
        if not wanted:
            return
        phrases, weight, end = self.phrases, self.weight, len(toks)
        # in text order: a set's order follows the hash seed, and so would the sum's rounding
        for i in sorted(self._places(toks, counts, wanted)):
            if i + 1 == end or toks[i + 1] not in starts[toks[i]]:  # most "en" start none
                continue
            # phrases are lower case: "PRIME MINISTER" is "prime minister"
            pair = toks[i].lower() + " " + toks[i + 1].lower()
            grams = [pair] + ([pair + " " + toks[i + 2].lower()] if i + 2 < end else [])
            for gram in grams:
                for topic, w in phrases.get(gram, ()):
                    key = (topic, gram)
                    weight[key] = w  # a phrase listed twice for a topic: its last weight
                    found[key] = found.get(key, 0) + 1

    @staticmethod
    def _places(toks: list[str], counts: Counter[str], wanted: set[str]) -> Iterator[int]:
        """Where the words of `wanted` are in `toks`: `list.index` scans in C, and the words
        are interned (tokens()), so most comparisons are of identities; `counts` says how many
        places each word has, so no scan runs past its last one."""
        index = toks.index
        for word in wanted:
            i = -1
            for _ in range(counts[word]):
                i = index(word, i + 1)
                yield i


# The key marking a word that can start a phrase, in a word's keys (a topic is never this).
_START = "<phrase start>"


class _WordKeys(dict[str, tuple[tuple[str, str], ...]]):
    """A word -> its (topic, term) keys (the empty tuple, most words', shared), computed by
    `Terms.word_hits` on a miss, the terms' weights noted beside; (_START, word) among them
    when the word can start a phrase."""

    def __init__(self, terms: Terms) -> None:
        super().__init__()
        self.terms = terms

    def __missing__(self, tok: str) -> tuple[tuple[str, str], ...]:
        terms = self.terms
        found = terms.word_hits(tok)
        for topic, term, w in found:
            terms.weight.setdefault((topic, term), w)
        keys = tuple((topic, term) for topic, term, _w in found)
        if terms._starts is None:
            terms._starts = terms._phrase_index()
        if tok in terms._starts:
            keys += ((_START, tok),)
        self[tok] = keys
        return keys


ANY = "any"  # the taxonomy key for terms of every language (names, acronyms)


@dataclass
class Lexicon:
    """Per-language term lists: a text in a language the lexicon has is matched against that
    language's terms (and the `any` ones) only, so an English "but" is not a French goal and a
    German "em" not a championship; a text of unknown language is matched against all."""

    labels: dict[str, str]
    base: dict[str, float] = field(default_factory=dict)  # per-topic multiplier (`weight:`)
    local: dict[str, dict[str, str]] = field(default_factory=dict)  # code -> {lang: label}
    by_lang: dict[str, Terms] = field(default_factory=dict)
    _views: dict[str, Terms] = field(default_factory=dict)

    def add(self, topic: str, term: str, weight: float, lang: str = ANY) -> None:
        self.by_lang.setdefault(lang, Terms()).add(topic, term, weight)
        self._views.clear()

    def terms(self, lang: str = "") -> Terms:
        key = lang if lang in self.by_lang and lang != ANY else ""
        view = self._views.get(key)
        if view is None:
            view = Terms()
            for code, table in self.by_lang.items():
                if not key or code in (key, ANY):
                    view.merge(table)
            self._views[key] = view
        return view


def load_lexicon(path: str | Path) -> Lexicon:
    # libyaml's loader when PyYAML has it: 4x faster on this file, part of every worker's start
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    doc = yaml.load(Path(path).read_text("utf-8"), Loader=loader)
    topics: dict[str, Any] = doc["topics"]
    lex = Lexicon(labels={code: str(t.get("label", code)) for code, t in topics.items()},
                  base={code: float(t.get("weight", 1.0)) for code, t in topics.items()},
                  local={code: {str(k): str(v) for k, v in (t.get("labels") or {}).items()}
                         for code, t in topics.items()})  # fmt: skip
    for code, spec in topics.items():
        for lang, terms in spec.items():
            if lang in ("label", "weight", "labels") or not terms:
                continue
            items = terms.items() if isinstance(terms, dict) else ((t, 1.0) for t in terms)
            for term, weight in items:
                if isinstance(term, dict):  # "- term: 2.0" in a list
                    for t, w in term.items():
                        lex.add(code, str(t), float(w), str(lang))
                else:
                    lex.add(code, str(term), float(weight), str(lang))
    return lex


@lru_cache(maxsize=4)
def cached_lexicon(path: str) -> Lexicon:
    return load_lexicon(path)


@dataclass(frozen=True)
class Prepared:
    """A text tokenised once, for the lexicon and the model alike: the title with the feed's
    tags (weighted TITLE_WEIGHT by the lexicon, counted twice by the model) and the first
    BODY_WORDS words of the body; word counts (for the model) on first use."""

    head: list[str]
    body: list[str]

    @cached_property
    def head_counts(self) -> Counter[str]:
        return Counter(self.head)

    @cached_property
    def body_counts(self) -> Counter[str]:
        return Counter(self.body)


def prepare(title: str, text: str, tags: list[str] | None = None) -> Prepared:
    head = tokens(title) + (tokens(" ; ".join(tags)) if tags else [])
    return Prepared(head, tokens(text, BODY_WORDS))


def topic_scores(
    lex: Lexicon, title: str, text: str, tags: list[str] | None = None, prior: str = "",
    lang: str = "", prepared: Prepared | None = None,
) -> dict[str, float]:  # fmt: skip
    terms = lex.terms(lang)
    p = prepared or prepare(title, text, tags)
    raw: defaultdict[str, float] = defaultdict(float)
    log, weight = math.log, terms.weight
    for times, toks, counts in ((TITLE_WEIGHT, p.head, p.head_counts),
                                (1.0, p.body, p.body_counts)):  # fmt: skip
        for key, count in terms.tally(toks, counts).items():
            raw[key[0]] += times * weight[key] * (1 + log(count))
    if prior in lex.labels:
        raw[prior] += PRIOR
    return {topic: score * lex.base.get(topic, 1.0) for topic, score in raw.items()}


def topics(
    lex: Lexicon, title: str, text: str, *, tags: list[str] | None = None, prior: str = "",
    max_topics: int = 3, min_score: float = 0.15, lang: str = "", prepared: Prepared | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Top topics of a text in `lang` (ISO 639-1; empty or unknown: every language's terms)."""
    raw = {t: s for t, s in topic_scores(lex, title, text, tags, prior, lang, prepared).items()
           if s >= MIN_RAW}  # fmt: skip
    if not raw:
        return []
    denom = sum(raw.values()) + EVIDENCE_FLOOR
    ranked = sorted(raw.items(), key=lambda kv: -kv[1])[:max_topics]
    return [
        {"code": code, "label": lex.labels[code], "score": round(score / denom, 3)}
        for code, score in ranked
        if score / denom >= min_score
    ]


def localise(lex: Lexicon, found: list[dict[str, Any]], lang: str) -> list[dict[str, Any]]:
    """Give each topic `label_local`, its label in the article's language, where the taxonomy
    has one (IPTC's own translations; `label` stays English)."""
    for topic in found:
        local = lex.local.get(topic["code"], {}).get(lang)
        if local:
            topic["label_local"] = local
    return found
