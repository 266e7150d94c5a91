FROM python:3.11-slim
# The package carries its defaults (ingest/defaults/); config/ mounted at /app/config overrides.
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ingest ingest
COPY workers workers
RUN pip install --no-cache-dir ".[train]" && rm -rf /app/ingest /app/workers \
    && useradd --system --uid 10001 --home-dir /var/lib/news-ingest --create-home news-ingest
# Writable state (the embedded server's data when no Redis URL is set) in one volume, owned by
# the unprivileged user the image runs as.
ENV NEWS_INGEST_HOME=/var/lib/news-ingest
VOLUME ["/var/lib/news-ingest"]
USER news-ingest
ENTRYPOINT []
CMD ["news-ingest", "run"]
