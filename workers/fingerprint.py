"""Text fingerprints of the normalised body: an exact hash, a 64-bit SimHash, MinHash bands.

Normalisation (case, punctuation, whitespace, Unicode compatibility forms) makes them blind to
typography. Near-copies are found in two steps, each doing what it is good at:

* MinHash LSH finds candidates: 4 bands of 3 minimums over the word 3-shingles. Two texts whose
  shingle sets overlap with Jaccard J share a band with probability 1-(1-J^3)^4: 0.94 at J=0.8
  (a trimmed ending plus an added credit line), 0.99 at J=0.9, 0.03 at J=0.2. Each band is one
  32-bit key in the index, so a lookup is 4 hash reads whatever the archive size. (6 bands
  found no more copies in bench/dedup.py and cost 30 % more memory.)
* SimHash confirms: the candidate must also be within `dedup.simhash_max_distance` bits (12 of
  64 by default; unrelated news articles measure 16 and more). Stored with the URL mark, it
  also tells a correction from a trivial change.

Why not SimHash alone: an edit of 10 % moves about 9 of its 64 bits, and no bucket scheme finds
all neighbours 9+ bits away in a few lookups. Why not MinHash alone: verifying a candidate would
need its whole signature stored; the 8-byte SimHash does it.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

import numpy as np

# Scripts written without spaces (Han, kana, Thai, Lao, Khmer, Myanmar): each character is a
# token, so their shingles are character 3-grams; a line of Chinese is not a handful of \w+ runs.
_UNSPACED = (
    "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uf900-\ufaff"
)
_WORDS = re.compile(rf"[{_UNSPACED}]|[^\W{_UNSPACED}]+", re.UNICODE)
BITS = 64


def words(text: str) -> list[str]:
    return _WORDS.findall(unicodedata.normalize("NFKC", text).casefold())


def shingle_count(n_tokens: int, shingle: int = 3) -> int:
    return max(n_tokens - shingle + 1, 1) if n_tokens else 0


def content_hash(text: str) -> str:
    return hash_of(words(text))


def hash_of(toks: list[str]) -> str:
    return hashlib.sha256(" ".join(toks).encode()).hexdigest()[:32]


def shingle_digests(text: str, shingle: int = 3) -> bytes:
    """8-byte hashes of the word shingles, concatenated."""
    return digests_of(words(text), shingle)


def digests_of(toks: list[str], shingle: int = 3) -> bytes:
    if not toks:
        return b""
    grams = (
        [" ".join(toks[i : i + shingle]) for i in range(len(toks) - shingle + 1)]
        if len(toks) >= shingle
        else [" ".join(toks)]
    )
    return b"".join(hashlib.blake2b(g.encode(), digest_size=8).digest() for g in grams)


def simhash(text: str, shingle: int = 3) -> int:
    return simhash_of(shingle_digests(text, shingle))


def simhash_of(digests: bytes) -> int:
    """Bit i is set when more than half of the shingle hashes have bit i set (one numpy pass:
    the digests unpacked into a shingles x 64 bit matrix, counted per column)."""
    if not digests:
        return 0
    bits = np.unpackbits(np.frombuffer(digests, dtype=np.uint8).reshape(-1, 8), axis=1)
    majority = bits.sum(axis=0, dtype=np.int64) * 2 > bits.shape[0]
    return int.from_bytes(np.packbits(majority).tobytes(), "big")


def distance(a: int, b: int) -> int:
    return (a ^ b).bit_count()


MH_BANDS, MH_ROWS = 4, 3
_MASK64 = (1 << 64) - 1
# Fixed seeds: the bands must be the same in every process and every release.
_SEEDS = [
    int.from_bytes(hashlib.blake2b(b"news-ingest-minhash-%d" % i, digest_size=8).digest(), "big")
    | 1
    for i in range(MH_BANDS * MH_ROWS)
]


_SEED_ARRAY = np.array(_SEEDS, dtype=np.uint64)


def minhash_bands(digests: bytes) -> list[int]:
    """MH_BANDS 32-bit band keys: each hashes MH_ROWS minimums of a seeded permutation."""
    if not digests:
        return []
    values = np.frombuffer(digests, dtype=">u8").astype(np.uint64)
    # (x * odd seed) mod 2^64 is a bijection (numpy's uint64 product wraps exactly so);
    # xor-folding the high half in mixes the low bits. All seeds at once: a seeds x shingles grid.
    with np.errstate(over="ignore"):
        grid = values[None, :] * _SEED_ARRAY[:, None]
    grid ^= grid >> np.uint64(29)
    mins = [int(m) for m in grid.min(axis=1)]
    out = []
    for b in range(MH_BANDS):
        row = b"".join(m.to_bytes(8, "big") for m in mins[b * MH_ROWS : (b + 1) * MH_ROWS])
        out.append(int.from_bytes(hashlib.blake2b(row, digest_size=4).digest(), "big"))
    return out
