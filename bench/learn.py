"""The cost of learning topics from the stream (workers/learn.py): the archive's size in Redis
and one refit's time, on 5,000 English texts.

    python bench/learn.py [--texts 5000]

The texts are MasakhaNEWS English (dev and, if present, more files of ../shared/data/
classification), each repeated with a distinct marker word until there are enough: a stand-in
for a language's archive, for timing and size only (its agreement figure means nothing, since
repeated texts sit on both sides of the held-back split). An embedded Valkey holds the archive.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "classification"

import redis  # noqa: E402

from ingest.embedded import EmbeddedValkey, free_port  # noqa: E402
from ingest.keys import Keys  # noqa: E402
from ingest.settings import Settings  # noqa: E402
from workers import learn  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--texts", type=int, default=5000)
    args = ap.parse_args()
    docs = [json.loads(line) for line in (DATA / "masakhanews_eng_dev.jsonl").read_text().splitlines()
            if line.strip()]  # fmt: skip
    texts = [(d["title"], f"{d['text']} marker{i}") for i in range(args.texts // len(docs) + 1)
             for d in docs][: args.texts]  # fmt: skip
    server = EmbeddedValkey(Path(tempfile.mkdtemp()), free_port())
    server.start()
    try:
        r = redis.Redis.from_url(server.url)
        settings, keys = Settings(), Keys()
        pipe = r.pipeline()
        for title, text in texts:
            learn.archive(pipe, keys, settings.classify, "en", title, text)
        pipe.execute()
        size = r.memory_usage(learn.archive_key(keys, "en")) or 0
        wall, cpu = time.time(), time.process_time()
        out = learn.refit(settings, r, force=True)[0]
        print(f"archive: {r.llen(learn.archive_key(keys, 'en'))} texts, {size / 2**20:.1f} MB in "
              f"Redis ({size / len(texts) / 1024:.1f} KB a text)")
        print(f"refit: {out.outcome}, {out.documents} self-labelled texts, model "
              f"{out.extra.get('bytes', 0) / 1024:,.0f} KB, {time.process_time() - cpu:.1f} "
              f"CPU-s ({time.time() - wall:.1f} s wall)")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
