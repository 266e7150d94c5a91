"""The language of an article: py3langid (workers/langid_model.py loads its model fast), with the
feed's declared language as a prior and close written standards decided as a group.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=8)
def identifier(languages: tuple[str, ...]) -> Any:
    from workers import langid_model

    ident = langid_model.load(norm_probs=True)
    if languages:
        ident.set_languages(list(languages))
    return ident


# Written standards so close that a short text often cannot tell them apart: the decision to
# answer at all is taken on the group's total probability, and the answer is the best member.
# (Codes after ISO_639_1: py3langid's "no" is already "nb" here.)
CLOSE_GROUPS = ({"hr", "bs", "sr"}, {"nb", "nn", "da"}, {"id", "ms"}, {"zh", "wuu", "yue"},
                {"cs", "sk"}, {"bg", "mk"})  # fmt: skip
# A regional variant the model knows but news is rarely written in: the standard it is written
# like wins unless the variant leads clearly (twice the standard's probability).
RARE_VARIANT = {"bs": "hr", "wuu": "zh", "nn": "nb"}
ISO_639_1 = {"no": "nb"}  # py3langid's "no" is Norwegian Bokmål


def detect(text: str, *, declared: str = "", allowed: tuple[str, ...] = (),
             min_prob: float = 0.5) -> str:  # fmt: skip
    """ISO 639-1 code of `text` (first ~1000 chars), the feed's declared language as a prior,
    `und` when unsure."""
    sample = text[:1000]
    if len(sample.strip()) < 20:
        return declared or "und"
    ident = identifier(tuple(sorted(allowed)))
    probs = {ISO_639_1.get(str(code), str(code)): float(p) for code, p in ident.rank(sample)[:8]}
    lang = max(probs, key=probs.__getitem__)
    standard = RARE_VARIANT.get(lang)
    if standard and probs.get(standard, 0.0) * 2 >= probs[lang]:
        lang = standard
    group = next((g for g in CLOSE_GROUPS if lang in g), {lang})
    prob = sum(p for code, p in probs.items() if code in group)
    if declared in group and prob >= min_prob:
        return declared  # within close standards the feed knows which one it writes
    if declared and declared != lang and prob < 0.95 and probs.get(declared, 0.0) >= 0.1:
        return declared
    return lang if prob >= min_prob else "und"
