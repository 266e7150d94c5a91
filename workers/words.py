"""How a text is read, for the lexicon and the topic model alike: its white-space pieces
("l'économie,"), each piece's words (French and Italian elisions undone, lower case but for
short all-capital acronyms), and `Prepared`, the title and body cut once.

Pieces, not a word list: news words repeat (Zipf), so a text's few hundred distinct pieces are
counted (Counter, in C) and each is read into its words once, in a memo (`PIECES`); the
lexicon and the model then look each distinct piece up in their own memos
(workers/classify.py `_PieceInfo`, workers/topic_model.py `_PieceRows`). A word never spans
white space, so the words are those a regex over the whole text would find.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from itertools import accumulate, chain
from operator import mul

BODY_WORDS = 1500  # words of the body read (the title and tags are read whole)
# A word: letters/digits, with inner apostrophes and hyphens ("aujourd'hui", "covid-19"); one
# at the end is punctuation.
_TOKEN = re.compile(r"\w[\w'-]*(?<![-'])", re.UNICODE)
# French (and Italian) elided articles and pronouns: "l'économie" is the word "économie", or
# every noun starting with a vowel would miss its term. English "'s" is a possessive.
_ELISION = re.compile(r"^(?:[ldjmnstc]|qu|jusqu|lorsqu|puisqu|quoiqu|presqu)'(?=\w)", re.I)


def _unelide(t: str) -> str:
    t = _ELISION.sub("", t)
    return t[:-2] if t.endswith(("'s", "'S")) and len(t) > 3 else t


def pieces(text: str) -> list[str]:
    """The text's pieces between white space, NFC and with typographic apostrophes made plain
    (what `PIECES` reads into words)."""
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    if "’" in text:
        text = text.replace("’", "'")
    return text.split()


def tokens(text: str, limit: int = 0) -> list[str]:
    """Lower-cased words, except short all-capital ones (acronyms: WHO, EU, AI), which keep
    their case so that a taxonomy term written in capitals matches only the acronym. A German
    noun ("Wirtschaft") is capitalised, not all-capital: it is lowered like any word. `limit`:
    at most that many words (0: all).

    Speed: the text is split on white space (C), and each distinct piece ("l'économie,") is
    read once into its words and memoised, because news words repeat (Zipf): the regex and the
    per-word rules then run on a few hundred pieces, not every word. A word never spans white
    space, so the words are the same as a regex over the whole text would find."""
    cut = pieces(text)
    if limit and len(cut) > 2 * limit:  # a piece has one word, rarely none or several
        cut = cut[: 2 * limit]
    words = list(chain.from_iterable(map(PIECES.__getitem__, cut)))
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
        for t in _TOKEN.findall(p):
            word = _unelide(t) if "'" in t else t
            words.append(word if len(word) <= 5 and word.isupper() else word.lower())
        found = self[p] = tuple(words)
        return found


PIECES = _Pieces()


def words_of(piece: str) -> tuple[str, ...]:
    """The words of one white-space piece, as `tokens` reads them (memoised)."""
    return PIECES[piece]


@dataclass(frozen=True)
class Prepared:
    """A text cut once, for the lexicon and the model alike: the white-space pieces of the
    title with the feed's tags (weighted TITLE_WEIGHT by the lexicon, counted twice by the
    model) and of the body up to its BODY_WORDS-th word (`first_words`); their counts, and
    the words' counts (for the training features), on first use."""

    head_pieces: list[str]
    body_pieces: list[str]
    body_piece_counts: Counter[str]

    @cached_property
    def head_piece_counts(self) -> Counter[str]:
        return Counter(self.head_pieces)

    @cached_property
    def head_counts(self) -> dict[str, int]:
        return word_counts(self.head_piece_counts)

    @cached_property
    def body_counts(self) -> dict[str, int]:
        return word_counts(self.body_piece_counts)


def word_counts(piece_counts: Counter[str]) -> dict[str, int]:
    """Word -> occurrences, from the pieces' counts (the words of a distinct piece are read
    once, from the memo)."""
    out: dict[str, int] = {}
    get, words_of = out.get, PIECES
    for piece, n in piece_counts.items():
        for word in words_of[piece]:
            out[word] = get(word, 0) + n
    return out


def prepare(title: str, text: str, tags: list[str] | None = None) -> Prepared:
    head = pieces(title) + (pieces(" ; ".join(tags)) if tags else [])
    return Prepared(head, *first_words(pieces(text), BODY_WORDS))


def first_words(cut: list[str], limit: int) -> tuple[list[str], Counter[str]]:
    """The pieces holding the first `limit` words, and their counts. Words are counted (one
    memo look-up a distinct piece: a cache miss each, so not in every text) only in a text of
    more than 2/3 x `limit` pieces: a shorter one passes `limit` words only at more than 1.5
    words a piece (prose has a few percent of two-word pieces, "U.S.", "3.5"; a table of
    decimals may have more) and is read whole. Counted, the cut is exact to the piece: when
    the limit-th word is not a piece's last, that piece is left out. At most 4 x `limit`
    pieces are read (the work on a huge page is bounded; a body whose first 6,000 pieces hold
    fewer than 1,500 words is mostly punctuation)."""
    cut = cut[: 4 * limit]
    counts = Counter(cut)
    if len(cut) <= limit * 2 // 3 or (
        sum(map(mul, map(len, map(PIECES.__getitem__, counts)), counts.values())) <= limit
    ):
        return cut, counts
    cut = cut[: bisect_right(list(accumulate(map(len, map(PIECES.__getitem__, cut)))), limit)]
    return cut, Counter(cut)
