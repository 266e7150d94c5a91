"""Prometheus endpoint: `/metrics` from the shared counters in Redis, `/healthz`, `/readyz`.

Counters live in Redis (every process adds to them), so this collector only reads: one `gather`
per scrape. Series names are a contract for dashboards (README, "Metrics").
"""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from ingest.core import observe
from ingest.core.keys import Keys
from ingest.core.settings import Settings
from ingest.status import gather, problems


class RedisCollector(Collector):
    def __init__(self, settings: Settings, r: redis.Redis) -> None:
        self.settings = settings
        self.r = r

    def collect(self) -> Iterator[Any]:
        data = gather(self.settings, self.r)
        arts = CounterMetricFamily(
            "news_ingest_articles", "Articles by outcome", labels=["outcome"]
        )
        for outcome, n in data["articles"].items():
            arts.add_metric([outcome], n)
        yield arts
        polls = CounterMetricFamily(
            "news_ingest_polls", "Feed polls by outcome", labels=["outcome"]
        )
        for outcome, n in data["polls"].items():
            polls.add_metric([outcome], n)
        yield polls
        deferrals = CounterMetricFamily(
            "news_ingest_items_deferred",
            "Items left for a later poll, by reason",
            labels=["reason"],
        )
        for reason, n in data["deferred"]["by_reason"].items():
            deferrals.add_metric([reason], n)
        yield deferrals
        yield GaugeMetricFamily(
            "news_ingest_items_waiting", "Deferred items waiting for their feed's next poll",
            value=data["deferred"]["waiting"],
        )  # fmt: skip
        feeds = GaugeMetricFamily("news_ingest_feeds", "Feeds by health state", labels=["health"])
        for health, n in data["feeds"]["by_health"].items():
            feeds.add_metric([health], n)
        feeds.add_metric(["stale"], len(data["feeds"]["stale"]))
        yield feeds
        depth = GaugeMetricFamily("news_ingest_queue_depth", "Jobs waiting", labels=["queue"])
        started = GaugeMetricFamily("news_ingest_queue_started", "Jobs running", labels=["queue"])
        failed = GaugeMetricFamily("news_ingest_queue_failed", "Failed jobs", labels=["queue"])
        for name, q in data["queues"].items():
            depth.add_metric([name], q["depth"])
            started.add_metric([name], q["started"])
            failed.add_metric([name], q["failed"])
        yield from (depth, started, failed)
        yield GaugeMetricFamily("news_ingest_workers", "Live RQ workers", value=data["workers"])
        yield GaugeMetricFamily(
            "news_ingest_stream_length",
            "Entries in the article stream",
            value=data["stream"]["length"],
        )
        lag = GaugeMetricFamily(
            "news_ingest_consumer_lag", "Entries not yet read", labels=["group"]
        )
        for g in data["stream"]["groups"]:
            lag.add_metric([g["name"]], g["lag"] or 0)
        yield lag
        yield GaugeMetricFamily(
            "news_ingest_deadletters",
            "Entries in the dead-letter stream",
            value=data["deadletters"],
        )
        stages = HistogramMetricFamily(
            "news_ingest_stage_seconds", "Time spent per stage (end_to_end: listed to published)",
            labels=["stage"],
        )  # fmt: skip
        for stage, (buckets, total) in observe.histograms(
            self.r, Keys(self.settings.redis.prefix)
        ).items():
            stages.add_metric([stage], buckets, total)
        yield stages
        success = GaugeMetricFamily(
            "news_ingest_site_extraction_success",
            "Share of a site's pages extracted from the page today (top sites by volume)",
            labels=["site"],
        )
        baseline = GaugeMetricFamily(
            "news_ingest_site_extraction_baseline",
            "The same share over the previous 7 days", labels=["site"],
        )  # fmt: skip
        drift = GaugeMetricFamily(
            "news_ingest_site_drift", "1 when today's share fell 0.3 below the baseline",
            labels=["site"],
        )  # fmt: skip
        for s in data["sites"]:
            if s["today"] is not None:
                success.add_metric([s["site"]], s["today"])
            if s["baseline"] is not None:
                baseline.add_metric([s["site"]], s["baseline"])
            drift.add_metric([s["site"]], 1.0 if s["drifting"] else 0.0)
        yield from (success, baseline, drift)
        yield from _topic_model_metrics(data["topic_models"])


def _topic_model_metrics(models: dict[str, Any]) -> Iterator[Any]:
    """Each language's learnt topic model (workers/learn.py) and the refits by outcome."""
    age = GaugeMetricFamily("news_ingest_topic_model_age_seconds",
                            "Age of the installed learnt topic model", labels=["language"])  # fmt: skip
    docs = GaugeMetricFamily("news_ingest_topic_model_documents",
                             "Texts the installed learnt model was trained on", labels=["language"])  # fmt: skip
    agree = GaugeMetricFamily(
        "news_ingest_topic_model_agreement",
        "Share of the held-back texts where the model's first topic is the lexicon's",
        labels=["language"])  # fmt: skip
    archive = GaugeMetricFamily("news_ingest_topic_archive_texts",
                                "Texts archived for the next refit", labels=["language"])  # fmt: skip
    for lang, info in models["languages"].items():
        archive.add_metric([lang], info["archive"])
        if info["model"] is not None:
            age.add_metric([lang], info["model"]["age_seconds"])
            docs.add_metric([lang], info["model"]["documents"])
            agree.add_metric([lang], info["model"]["agreement"])
    refits = CounterMetricFamily("news_ingest_topic_refits", "Topic model refits by outcome",
                                 labels=["outcome"])  # fmt: skip
    for outcome, n in models["refits"].items():
        refits.add_metric([outcome], n)
    yield from (age, docs, agree, archive, refits)


def ready(settings: Settings, r: redis.Redis) -> tuple[bool, str]:
    found = problems(r, Keys(settings.redis.prefix), settings.worker.job_timeout)
    return (not found, "; ".join(found) or "ok")


class MetricsServer(ThreadingHTTPServer):
    """Bound (and so the port checked) before anything else starts; `attach` gives it the data."""

    daemon_threads = True
    registry: CollectorRegistry | None = None
    settings: Settings
    r: redis.Redis


class PortInUse(OSError):
    """The metrics port is taken: one line for the user, nothing started."""


def bind(port: int, host: str = "0.0.0.0") -> MetricsServer:
    try:
        return MetricsServer((host, port), _Handler)
    except OSError as exc:
        raise PortInUse(
            f"metrics port {host}:{port} is not available ({exc.strerror}); choose another with "
            "--metrics-port, NEWS_INGEST_METRICS_PORT or `make run METRICS_PORT=...` (0: off)"
        ) from exc


def attach(httpd: MetricsServer, settings: Settings, r: redis.Redis) -> MetricsServer:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisCollector(settings, r))
    httpd.settings, httpd.r, httpd.registry = settings, r, registry
    return httpd


def serve(
    settings: Settings, r: redis.Redis, port: int, host: str = "0.0.0.0"
) -> ThreadingHTTPServer:
    return attach(bind(port, host), settings, r)


class _Handler(BaseHTTPRequestHandler):
    server: MetricsServer

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        srv = self.server
        if srv.registry is None:
            self._send(503, b"starting\n")
        elif path == "/metrics":
            try:
                body, status = generate_latest(srv.registry), 200
            except redis.RedisError as exc:
                body, status = f"redis unreachable: {exc}\n".encode(), 503
            self._send(status, body, "text/plain; version=0.0.4")
        elif path == "/healthz":
            self._send(200, b"ok\n")
        elif path == "/readyz":
            ok, why = ready(srv.settings, srv.r)
            self._send(200 if ok else 503, (why + "\n").encode())
        else:
            self._send(404, b"not found\n")

    def _send(self, status: int, body: bytes, ctype: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
