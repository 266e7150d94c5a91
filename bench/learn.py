"""Learning topics from the stream (workers/learn.py): the archive's size in Redis and one
refit's time on 5,000 English texts; then the agreement gate on real news (the MasakhaNEWS
English and French dev texts as two languages' archives): the models the refit installs and
the share of agreement a model trained on shuffled labels gets (it must be refused).

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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "classification"

import redis  # noqa: E402

from ingest.core.embedded import EmbeddedValkey, free_port  # noqa: E402
from ingest.core.keys import Keys  # noqa: E402
from ingest.core.settings import Settings  # noqa: E402
from workers import learn  # noqa: E402


def gate(r: redis.Redis, settings: Settings) -> None:
    import random

    from workers import topic_model

    r.flushdb()
    keys = Keys()
    small = settings.with_overrides(classify={"learn_min_texts": 150, "learn_gate_size": 100})
    pipe = r.pipeline()
    for lang, name in (("en", "eng"), ("fr", "fra")):
        for line in (DATA / f"masakhanews_{name}_dev.jsonl").read_text().splitlines():
            if line.strip():
                d = json.loads(line)
                learn.archive(pipe, keys, small.classify, lang, d["title"], d["text"])
    pipe.execute()
    for o in learn.refit(small, r):
        print(f"gate, real news {o.lang}: {o.outcome} ({o.detail}), {o.documents} training "
              f"texts")

    def shuffled(docs: list[Any]) -> Any:
        labels = [code for _p, code in docs]
        random.Random(1).shuffle(labels)
        return topic_model.train_prepared([(p, c) for (p, _c), c in zip(docs, labels, strict=True)],
                                          self_labelled=True)  # fmt: skip

    for o in learn.refit(small, r, force=True, trainer=shuffled):
        print(f"gate, shuffled labels {o.lang}: {o.outcome} ({o.detail})")


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
        gate(r, settings)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
