"""news-ingest, the I/O side: settings, Redis, feeds, polling and fetching."""

from importlib import metadata


def _version() -> str:
    """The installed distribution's version: pyproject.toml is the one place it is written."""
    try:
        return metadata.version("news-ingest")
    except metadata.PackageNotFoundError:  # imported from a tree that was never installed
        return "0+unknown"


__version__ = _version()
