"""news-ingest, the article path: extract, dedup, classify, publish (RQ jobs)."""
