"""news-ingest, the I/O side: settings, Redis, feeds, polling and fetching."""

__version__ = "0.1.0"
