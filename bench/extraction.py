"""Extraction quality and speed: news-ingest's extractor next to trafilatura, one run each.

Runs ../shared/tools/extraction_score.py (the benchmark's own metric) on ../shared/data/extraction
for each extractor in turn and prints their summary lines and the speed ratio; then, for
news-ingest, a leak count on our own extended boilerplate list (bylines, credits, signatures,
promotions, share bars, in English, French and German: EXTENDED below) and the worst ten pages
with the lines we kept that the truth does not have.
Usage: python bench/extraction.py [--limit N]   (about a minute on 91 pages)
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
DATA = SHARED / "data" / "extraction"
EXTRACTORS = {
    "news-ingest": "workers.extract:extract_body",
    "trafilatura-default": "trafilatura",
    "trafilatura-precision-nocomments": "trafilatura_precision_nocomments",
}

# Our own list, on top of the scorer's: (label, regex on a lower-cased line). A hit counts when
# the truth has no line matching the same pattern.
EXTENDED: list[tuple[str, str]] = [
    ("byline: by/par/von Name", r"^(?:by|par|von|text:|texte\s?:)\s+\w[\w.'-]*(?:\s+\w[\w.'-]*){0,3}"
                                r"(?:\s*[,|·•-]\s*.{0,40})?$"),
    ("cms credit: submitted/posted by", r"^(?:submitted|posted|written|published) by\b"
                                        r"|^(?:publié|écrit) par\b|^(?:veröffentlicht|geschrieben) von\b"),
    ("photo credit", r"^(?:photo|foto|bild|image|crédit(?: photo)?|credit)s?\s*[:©]"),
    ("signature: e-mail / handle", r"^\S+@\S+\.\w+$|^@\w{2,}$|^(?:follow|suivez|folgen).{0,40}@\w+"),
    ("newsletter / membership prompt", r"\b(?:sign up|subscribe|inscrivez-vous|abonnez-vous|"
                                        r"abonnieren|melden sie sich)\b.{0,60}\b(?:newsletter|"
                                        r"inbox|lettre d'information|membership|member)\b"),
    ("support our journalism", r"\b(?:support (?:our|independent) journalism|become a (?:member|"
                               r"subscriber|patron)|soutenez|unterstützen sie)\b"),
    ("share bar", r"^(?:share|partager|teilen)(?: (?:on|this|sur|auf))?\b.{0,40}$"),
    ("read more / continue reading", r"^(?:read more|continue reading|lire (?:la )?suite|"
                                     r"weiterlesen|mehr zum thema)\b.{0,60}$"),
]
_EXT = [(label, re.compile(rx, re.I)) for label, rx in EXTENDED]


def extended_leaks(true: str, pred: str) -> list[str]:
    t_lines = [ln.strip().lower() for ln in true.splitlines() if ln.strip()]
    p_lines = [ln.strip().lower() for ln in pred.splitlines() if ln.strip()]
    out = []
    for label, rx in _EXT:
        if any(rx.search(ln) for ln in p_lines) and not any(rx.search(ln) for ln in t_lines):
            out.append(label)
    return out


def score(extractor: str, extra: list[str]) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, str(SHARED / "tools" / "extraction_score.py"), "--data", str(DATA),
         "--extractor", extractor, "--quiet", *extra],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.strip().splitlines()[-1]  # fmt: skip
    return {k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)", out)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=0, help="only the first N pages")
    args = ap.parse_args()
    if not DATA.is_dir():
        sys.exit(f"error: {DATA} is absent (the shared corpus sits beside the checkout)")
    extra = ["--limit", str(args.limit)] if args.limit else []
    work = Path(tempfile.mkdtemp(prefix="bench-extraction-"))
    results = {}
    for name, ext in EXTRACTORS.items():
        own = ["--save-predictions", str(work / f"{name}.json"), "--per-doc",
               str(work / f"{name}.jsonl")] if name == "news-ingest" else []  # fmt: skip
        results[name] = score(ext, extra + own)
    print(f"{'extractor':36} {'F1':>6} {'P':>6} {'R':>6} {'leak':>6} {'cpu docs/s':>10}")
    for name, m in results.items():
        print(f"{name:36} {m['F1']:6.3f} {m['P']:6.3f} {m['R']:6.3f} {m['leak']:6.3f} "
              f"{m['cpu_docs_per_s']:10.1f}")  # fmt: skip
    ours, base = results["news-ingest"], results["trafilatura-default"]
    print(f"speed ratio news-ingest / trafilatura-default: "
          f"{ours['cpu_docs_per_s'] / base['cpu_docs_per_s']:.2f}")  # fmt: skip

    truth = json.loads((DATA / "ground-truth.json").read_text("utf-8"))
    preds = json.loads((work / "news-ingest.json").read_text("utf-8"))
    leaked = {i: extended_leaks(truth[i]["articleBody"], p["articleBody"])
              for i, p in preds.items()}  # fmt: skip
    hits = {i: labels for i, labels in leaked.items() if labels}
    print(f"extended boilerplate list: {len(hits)}/{len(preds)} outputs leak")
    for i, labels in sorted(hits.items()):
        print(f"  {i[:12]} {', '.join(labels)}")
    docs = [json.loads(line) for line in (work / "news-ingest.jsonl").read_text().splitlines()]
    for d in docs:
        p, rc = d["precision"] or 0.0, d["recall"] or 0.0
        d["f1"] = 2 * p * rc / (p + rc) if p + rc else 0.0
    print("worst ten pages (F1 P R; kept lines the truth lacks / truth lines we lost):")
    for d in sorted(docs, key=lambda d: d["f1"])[:10]:
        t_lines = {ln.strip() for ln in truth[d["id"]]["articleBody"].splitlines() if ln.strip()}
        p_lines = [ln.strip() for ln in preds[d["id"]]["articleBody"].splitlines() if ln.strip()]
        extra_lines = [ln for ln in p_lines if ln not in t_lines and not any(ln in t for t in t_lines)]
        lost = [ln for ln in t_lines if not any(ln in p for p in p_lines)]
        print(f"  {d['id'][:12]} {d['f1']:.3f} {d['precision'] or 0:.3f} {d['recall'] or 0:.3f} "
              f"+{len(extra_lines)} -{len(lost)} {truth[d['id']].get('url', '')}")  # fmt: skip
        for ln in extra_lines[:4]:
            print(f"      + {ln[:110]}")
        for ln in lost[:2]:
            print(f"      - {ln[:110]}")


if __name__ == "__main__":
    main()
