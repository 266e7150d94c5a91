"""Page bodies as they are kept in Redis (beside their job, in dead letters): zstd-compressed.

zstd at its default level packs the extraction pages 4.6:1 against zlib level 3's 4.2:1, in a
third of the CPU, and unpacks three times faster (docs/benchmarks.md, "Cost per article"). The
poller packs every fetched page and a worker unpacks it, so this is per-article cost. Bodies
written by earlier versions (zlib) still read: the formats are told apart by zstd's frame magic.
"""

from __future__ import annotations

import zlib

import zstandard

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# the content size (which unpack relies on) and a checksum, so damage raises, never misreads
_packer = zstandard.ZstdCompressor(level=3, write_checksum=True)
_unpacker = zstandard.ZstdDecompressor()


def pack(body: bytes) -> bytes:
    return _packer.compress(body)


class Unreadable(ValueError):
    """A stored body that does not decompress (truncated or damaged)."""


def unpack(stored: bytes) -> bytes:
    try:
        if stored[:4] == ZSTD_MAGIC:
            return _unpacker.decompress(stored)
        return zlib.decompress(stored)
    except (zstandard.ZstdError, zlib.error) as exc:
        raise Unreadable(f"stored body does not decompress: {exc}") from exc
