"""Which lines the site template learning and the byline/promotion rules would take from real
article texts: the 464 English news articles (BBC, one site) of
../shared/data/classification/masakhanews_eng_dev.jsonl, read line by line.

Prints the lines found on at least N distinct articles (what `template.min_articles` = N - 1
would drop, once learned) and the lines workers/credits.py removes, so a reader can judge by eye
that none is a story sentence. No Redis: the count is the one workers/template.py keeps.
Usage: python bench/template_lines.py [--min-articles 4]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workers import credits  # noqa: E402
from workers.template import fingerprint  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "classification" / "masakhanews_eng_dev.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--min-articles", type=int, default=4)
    args = ap.parse_args()
    if not DATA.is_file():
        sys.exit(f"error: {DATA} is absent")
    seen: Counter[bytes] = Counter()
    sample: dict[bytes, str] = {}
    rules: Counter[str] = Counter()
    removed: list[str] = []
    docs = [json.loads(line) for line in DATA.read_text("utf-8").splitlines() if line.strip()]
    for doc in docs:
        lines = [ln.strip() for ln in doc["text"].splitlines() if ln.strip()]
        fps = {fp: ln for ln in lines if (fp := fingerprint(ln))}
        seen.update(fps.keys())
        sample.update(fps)
        for line, rule in zip(lines, credits.judge(lines, set(), doc.get("title", "")), strict=True):
            if rule:
                rules[rule] += 1
                removed.append(f"{rule}: {line[:120]}")
    threshold = args.min_articles + 1  # on N other articles: N + 1 in all
    common = [(n, sample[fp]) for fp, n in seen.most_common() if n >= threshold]
    print(f"{len(docs)} articles; lines on >= {threshold} articles (template once learned): "
          f"{len(common)}")  # fmt: skip
    for n, line in common:
        print(f"  {n:3} {line[:120]}")
    print(f"credits rules: {dict(rules)}; distinct lines removed: {len(set(removed))}")
    for line in sorted(set(removed)):
        print(f"  {line}")


if __name__ == "__main__":
    main()
