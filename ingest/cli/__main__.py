"""`python -m ingest.cli`."""

from ingest.cli import main

main()
