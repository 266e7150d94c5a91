"""Page bodies as stored in Redis: zstd frames, and zlib bodies from earlier versions still read."""

from __future__ import annotations

import zlib

import pytest

from ingest.core import bodies

PAGE = b"<html><body>" + b"<p>The council met on Tuesday.</p>" * 400 + b"</body></html>"


def test_pack_is_zstd_and_round_trips() -> None:
    stored = bodies.pack(PAGE)
    assert stored.startswith(bodies.ZSTD_MAGIC)
    assert len(stored) < len(PAGE) // 10
    assert bodies.unpack(stored) == PAGE


def test_zlib_bodies_written_before_zstd_still_read() -> None:
    assert bodies.unpack(zlib.compress(PAGE, 3)) == PAGE


@pytest.mark.parametrize("stored", [bodies.pack(PAGE)[:40], zlib.compress(PAGE)[:40], b"junk"])
def test_a_damaged_body_raises_rather_than_returning_garbage(stored: bytes) -> None:
    with pytest.raises(bodies.Unreadable):
        bodies.unpack(stored)
