"""Feeds as data: feed lists (YAML/OPML), parsing (RSS/Atom/JSON Feed), the registry in Redis, item identity, the poll schedule and the probe."""
