FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ingest ingest
COPY workers workers
COPY config config
RUN pip install --no-cache-dir ".[train]"  # scikit-learn: the daily topic-model refit (classify.learn)
USER nobody
ENTRYPOINT []
CMD ["news-ingest", "run"]
