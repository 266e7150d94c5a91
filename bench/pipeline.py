"""Cost per article of the whole service against the extraction floor, in one run.

    python bench/pipeline.py [--copies 9] [--workers 1,2] [--repeat 3]

Serves the 91 pages of ../shared/data/extraction on 127.0.0.1, each `--copies` times under
different URLs (copy k > 0 swaps " the " for a look-alike word, so its text and content hash
differ and it is published as its own article), listed by 10 RSS feeds. Then, for each worker
count, runs `news-ingest run --once` as a real process tree against a fresh embedded Valkey and
measures the CPU seconds of that tree (poller, workers) plus Valkey's, per published article.
In the same run, a plain loop calling `trafilatura.extract` on the same pages, as a program of
its own (split over as many processes at once as the service has workers), run right before
and right after each service run (the two averaged), is the floor, also per published article: the ratio is the CPU of the service over
the CPU of the floor on the same pages, each a whole program, start-up included. Prints both,
their ratio (target ≤ 1.25) and throughput per worker count.

Both sides run twice, over a third of the pages and over all of them: the difference is the
steady-state cost of the extra articles (`marginal_ms`, `marginal_ratio`), without the fixed
cost of starting the processes (imports, models: `startup_s`, `floor_startup_s`), which a
daemon pays once. Both the total and the marginal ratio are printed.
"""

from __future__ import annotations

import argparse
import gzip
import html
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
from common import ROOT, proc_cpu, serve
from common import SHARED as CORPORA
from common import valkey as temporary_valkey

SHARED = CORPORA / "extraction"

# " the " as it is, then with a look-alike e (Cyrillic е, ė, ē, è, é, ê, ë, ę): one per copy
LOOKALIKES = [" the "] + [f" th{e} " for e in "еėēèéêëę"]
FEEDS = 10


def build_pages(copies: int) -> dict[str, bytes]:
    pages: dict[str, bytes] = {}
    for path in sorted((SHARED / "html").glob("*.html.gz")):
        doc = gzip.decompress(path.read_bytes()).decode("utf-8", "replace")
        for k in range(copies):
            body = doc if k == 0 else doc.replace(" the ", LOOKALIKES[k % len(LOOKALIKES)])
            pages[f"/c{k}/{path.name.split('.')[0][:16]}"] = body.encode()
    return pages


def feeds_for(paths: list[str], base: str) -> dict[str, bytes]:
    out = {}
    for f in range(FEEDS):
        items = "".join(
            f"<item><title>Story {html.escape(p)}</title><link>{base}{p}</link>"
            f"<guid>{base}{p}</guid></item>"
            for p in paths[f::FEEDS]
        )
        out[f"/feed{f}.xml"] = (
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {f}</title>'
            f"<link>{base}/</link><description>bench</description>{items}</channel></rss>"
        ).encode()
    return out


def service_run(port: int, workers: int, feeds_file: Path) -> tuple[float, float, int, float]:
    """(CPU s of the run's process tree, CPU s of Valkey, articles published, wall s)."""
    with temporary_valkey() as valkey:
        pid = valkey.running_pid()
        assert pid is not None
        valkey_before = proc_cpu(pid)
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEWS_INGEST_")}
        env.update({"NEWS_INGEST_FETCH_ALLOW": f"127.0.0.1:{port}",
                    "NEWS_INGEST_POLL_HOST_RATE": "0", "NEWS_INGEST_POLL_HOST_INFLIGHT": "0",
                    "NEWS_INGEST_FETCH_ROBOTS": "false",
                    "NEWS_INGEST_DEDUP_DROP_NEAR_DUPLICATES": "false"})  # fmt: skip
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-m", "ingest.cli", "--log-level", "warning", "--redis-url",
             valkey.url, "--feeds", str(feeds_file), "run", "--once", "--workers",
             str(workers)],
            cwd=ROOT, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-2000:])
        valkey_cpu = proc_cpu(pid) - valkey_before
        r = redis.Redis.from_url(valkey.url)
        published = r.xlen("news:articles")
        r.close()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, valkey_cpu, published, wall


FLOOR_PROGRAM = """
import sys, trafilatura
paths = open(sys.argv[1]).read().split()
for path in paths[int(sys.argv[2])::int(sys.argv[3])]:
    trafilatura.extract(open(path, "rb").read().decode("utf-8", "replace"))
"""


def floor_run(listing: Path, processes: int = 1) -> float:
    """CPU seconds of the floor as a program of its own, start-up included like the service's:
    a plain loop calling `trafilatura.extract` on the pages listed, split over as many
    processes running at once as the service has workers. Busy cores slow each other down
    (shared caches, a shared host): compared with a single floor process, two workers would
    pay for that contention and the floor would not."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    procs = [subprocess.Popen([sys.executable, "-c", FLOOR_PROGRAM, str(listing), str(k),
                               str(processes)]) for k in range(processes)]  # fmt: skip
    if any(p.wait() != 0 for p in procs):
        raise RuntimeError("the floor program failed")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=9)  # every look-alike: the most pages
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    pages = build_pages(args.copies)
    routes = dict(pages)
    httpd = serve(routes)  # the handler reads `routes`: the feeds, which need the port, go in next
    port = httpd.server_address[1]
    base = f"http://127.0.0.1:{port}"
    paths = sorted(pages)
    small = [p for p in paths if int(p.split("/")[1][1:]) < max(1, args.copies // 3)]
    with tempfile.TemporaryDirectory() as tmp:
        lists = {}
        for name, subset in (("small", small), ("full", paths)):
            routes.update({f"/{name}{k}": v for k, v in feeds_for(subset, base).items()})
            lists[name] = Path(tmp) / f"{name}.yaml"
            lists[name].write_text(
                "feeds:\n" + "".join(f"  - {base}/{name}/feed{f}.xml\n" for f in range(FEEDS))
            )
        listings = {}
        for name, subset in (("small", small), ("full", paths)):
            listings[name] = Path(tmp) / f"{name}.txt"
            listings[name].write_text("\n".join(str(Path(tmp) / p.strip("/").replace("/", "-"))
                                                for p in subset))  # fmt: skip
        for p in paths:
            (Path(tmp) / p.strip("/").replace("/", "-")).write_bytes(pages[p])
        rounds = []
        for _ in range(args.repeat):  # the machine is shared: the median of a few rounds
            for w in [int(x) for x in args.workers.split(",")]:
                # each service run between two runs of the floor on the same pages, averaged: the
                # machine's speed drifts, and the ratio should compare runs made under the same
                # conditions (a linear drift cancels out)
                floors, runs = {}, {}
                for name in ("small", "full"):
                    before = floor_run(listings[name], w)
                    runs[name] = service_run(port, w, lists[name])
                    floors[name] = (before + floor_run(listings[name], w)) / 2
                rounds.append(summary(w, runs, floors))
                print("round:", json.dumps(rounds[-1]), file=sys.stderr)
    httpd.shutdown()
    print(f"pages: {len(pages)} ({args.copies} copies of the 91 benchmark pages), feeds: {FEEDS}; "
          f"a first run over {len(small)} of them; median of {args.repeat} rounds")  # fmt: skip
    for w in [int(x) for x in args.workers.split(",")]:
        mine = [r for r in rounds if r["workers"] == w]
        print(json.dumps({k: statistics.median(r[k] for r in mine) for k in mine[0]}))


def summary(
    w: int, runs: dict[str, tuple[float, float, int, float]], floors: dict[str, float]
) -> dict[str, float]:
    """Both sides per published article, as the issue defines the ratio: the floor extracts
    every page the service was given, including those the service fetched, extracted and then
    did not publish (copies of a page whose text has no " the " to swap are exact duplicates).
    Both are measured as whole programs, over a third of the pages and over all of them."""
    cpu, valkey_cpu, published, wall = runs["full"]
    s_cpu, s_valkey, s_published, _s_wall = runs["small"]
    per = (cpu + valkey_cpu) / max(published, 1)
    floor_per = floors["full"] / max(published, 1)
    extra = max(published - s_published, 1)
    marginal = (cpu + valkey_cpu - s_cpu - s_valkey) / extra
    marginal_floor = (floors["full"] - floors["small"]) / extra
    startup = (s_cpu + s_valkey) - marginal * s_published
    floor_startup = floors["small"] - marginal_floor * s_published
    return {
        "workers": w, "published": published, "wall_s": round(wall, 1),
        "articles_per_s": round(published / wall, 1),
        "floor_ms": round(floor_per * 1000, 1),
        "cpu_per_article_ms": round(per * 1000, 1),
        "of_which_valkey_ms": round(valkey_cpu / max(published, 1) * 1000, 2),
        "ratio_to_floor": round(per / floor_per, 2),
        "marginal_ms": round(marginal * 1000, 1), "startup_s": round(startup, 2),
        "marginal_ratio": round(marginal / marginal_floor, 2),
        "floor_startup_s": round(floor_startup, 2),
    }  # fmt: skip


if __name__ == "__main__":
    main()
