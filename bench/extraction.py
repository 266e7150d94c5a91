"""Extraction quality and speed: news-ingest's extractor next to trafilatura defaults, one run.

Runs ../shared/tools/extraction_score.py (the benchmark's own metric) on ../shared/data/extraction
for each extractor in turn and prints their summary lines and the speed ratio.
Usage: python bench/extraction.py
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
EXTRACTORS = {
    "news-ingest": "workers.extract:extract_body",
    "trafilatura-default": "trafilatura",
    "trafilatura-precision-nocomments": "trafilatura_precision_nocomments",
}


def score(extractor: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, str(SHARED / "tools" / "extraction_score.py"), "--data",
         str(SHARED / "data" / "extraction"), "--extractor", extractor, "--quiet"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.strip().splitlines()[-1]  # fmt: skip
    return {k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)", out)}


def main() -> None:
    results = {name: score(ext) for name, ext in EXTRACTORS.items()}
    print(f"{'extractor':36} {'F1':>6} {'P':>6} {'R':>6} {'leak':>6} {'cpu docs/s':>10}")
    for name, m in results.items():
        print(f"{name:36} {m['F1']:6.3f} {m['P']:6.3f} {m['R']:6.3f} {m['leak']:6.3f} "
              f"{m['cpu_docs_per_s']:10.1f}")  # fmt: skip
    ours, base = results["news-ingest"], results["trafilatura-default"]
    print(f"speed ratio news-ingest / trafilatura-default: "
          f"{ours['cpu_docs_per_s'] / base['cpu_docs_per_s']:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
