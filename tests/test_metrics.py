"""/metrics, /healthz and /readyz served for real, reading counters a real run produced."""

import threading
import time
import urllib.request

import redis

from ingest import counters
from ingest.embedded import free_port
from ingest.keys import Keys
from ingest.metrics import serve
from ingest.settings import Settings


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_metrics_and_readiness(r: redis.Redis, redis_url: str) -> None:
    keys = Keys()
    counters.incr(r, keys, "articles", "published", 3)
    counters.incr(r, keys, "polls", "not_modified", 2)
    r.xadd("news:articles", {"id": "x", "event": "created", "data": "{}"})
    port = free_port()
    httpd = serve(Settings(), r, port, "127.0.0.1")
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        status, body = get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        assert 'news_ingest_articles_total{outcome="published"} 3.0' in body
        assert 'news_ingest_polls_total{outcome="not_modified"} 2.0' in body
        assert "news_ingest_stream_length 1.0" in body
        assert 'news_ingest_queue_depth{queue="articles"} 0.0' in body
        assert get(f"http://127.0.0.1:{port}/healthz")[0] == 200
        assert get(f"http://127.0.0.1:{port}/readyz")[0] == 503  # no poller heartbeat yet
        r.set("news:poller:heartbeat", f"{time.time():.0f}")
        assert get(f"http://127.0.0.1:{port}/readyz")[0] == 200
    finally:
        httpd.shutdown()
        httpd.server_close()
