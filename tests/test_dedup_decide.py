"""The dedup decision (workers/dedup.py): `decide` is pure (fast tests of each rule, no Redis),
and `read` gathers what it needs in one round trip to a real Valkey, candidates included."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import redis

from ingest.core.keys import Keys
from ingest.core.seen import (
    GENERATIONS,
    SeenStore,
    UrlMark,
    band_field,
    claim_field,
    hash_field,
    tag,
    url_field,
)
from ingest.core.settings import DedupSettings
from workers import fingerprint
from workers.dedup import CANDIDATES, Fingerprints, Item, Known, decide, material_change, read

SETTINGS = DedupSettings()
TEXT = " ".join(f"word{i} of the story number {i % 7}" for i in range(60))
FP = Fingerprints.of(TEXT, (), SETTINGS.near_min_shingles)
A, B, C, D = ("aa" * 8, "bb" * 8, "cc" * 8, "dd" * 8)


def mark(aid: str, fp: Fingerprints = FP, feed: str = "", title: str = "",
         cluster: str = "") -> UrlMark:  # fmt: skip
    return UrlMark(aid, fp.content_hash, fp.simhash, fp.words, cluster or aid, tag(feed),
                   tag(title))  # fmt: skip


def far(fp: Fingerprints, bits: int) -> Fingerprints:
    """The same fingerprints with the SimHash moved by `bits` bits."""
    return Fingerprints("ef" * 16, fp.simhash ^ ((1 << bits) - 1), fp.bands, fp.words, fp.shingles)


# ---------------------------------------------------------------- decide: pure, rule by rule


def test_rule_1_own_url_seen() -> None:
    me = Item(A, [A])
    alias = decide(Known(own=bytes.fromhex(B)), me, FP, SETTINGS)  # another URL of story B
    assert (alias.event, alias.duplicate_of, alias.why) == ("duplicate", B, f"url:{B}")
    same = decide(Known(own=mark(A).pack()), me, FP, SETTINGS)
    assert (same.event, same.why) == ("duplicate", f"url:{A}")
    trivial = decide(Known(own=mark(A).pack()), me, far(FP, SETTINGS.simhash_max_distance),
                     SETTINGS)  # fmt: skip
    assert trivial.why == f"url-trivial-change:{A}"
    own = mark(A, cluster=C).pack()
    moved = decide(Known(own=own), me, far(FP, SETTINGS.simhash_max_distance + 1), SETTINGS)
    assert (moved.event, moved.expected, moved.cluster_id) == ("updated", own, C)


def test_rule_1_a_job_run_again_is_no_correction_whatever_its_text() -> None:
    """The GUID mark holds the item's version this job carries: that version was published,
    this is its job again (tests/test_crashes.py has the re-run a learned template caused)."""
    v1, v2, guid = b"\x01" * 4, b"\x02" * 4, b"g" + b"\x07" * 8
    moved = far(FP, SETTINGS.simhash_max_distance + 1)
    again = decide(Known(own=mark(A).pack(), version=v1), Item(A, [A], guid=guid, version=v1),
                   moved, SETTINGS)  # fmt: skip
    assert (again.event, again.why) == ("duplicate", f"item-version:{A}")
    newer = decide(Known(own=mark(A).pack(), version=v1), Item(A, [A], guid=guid, version=v2),
                   moved, SETTINGS)  # fmt: skip
    assert newer.event == "updated"  # the feed lists a new version: a correction may be
    unknown = decide(Known(own=mark(A).pack(), version=v1), Item(A, [A], guid=guid), moved,
                     SETTINGS)  # fmt: skip
    assert unknown.event == "updated"  # a job without a version proves nothing


def test_material_change_is_bits_or_ten_words_and_three_percent() -> None:
    assert not material_change(0, 500, 0b111, 500, 3)
    assert material_change(0, 500, 0b1111, 500, 3)
    assert material_change(0, 500, 0, 520, 3)  # 20 words, 3.8 %
    assert not material_change(0, 1000, 0, 1025, 3)  # 25 words of 1,025 is under 3 %
    assert not material_change(0, 100, 0, 109, 3)  # under 10 words


def test_material_change_boundaries() -> None:
    """Exactly at each threshold: 3 bits is not a change, 4 is; 9 words is not, 10 is (when
    that is also 3 %); 3 % of the longer text, not of the shorter."""
    assert not material_change(0, 300, 0b111, 300, 3)
    assert material_change(0, 300, 0b1111, 300, 3)
    assert not material_change(0, 300, 0, 309, 3)  # 9 words (2.9 %)
    assert material_change(0, 300, 0, 310, 3)  # 10 words (3.2 %)
    assert material_change(0, 310, 0, 300, 3)  # shrinking counts the same
    assert not material_change(0, 1000, 0, 1030, 3)  # 30 words: 2.91 % of 1,030
    assert material_change(0, 1000, 0, 1031, 3)  # 31 words: 3.007 % of 1,031


def _page_with_meta(ts: str, views: str, in_text: bool) -> str:
    from tests import pages

    page = pages.article_page("Story", pages.paragraphs(pages.BOLIVIA))
    meta = (f"<p>Updated {ts}. {views} views</p>" if in_text else
            f'<p class="meta"><time datetime="2026-12-02T{ts}:00Z">Updated {ts}</time> '
            f'<span class="views">{views} views</span></p>')  # fmt: skip
    byline = '<p class="byline">By Staff Reporter</p>'
    return page.replace(byline, byline + meta)


def _decide_again(first: str, second: str) -> str:
    """The page fetched, published, then fetched again: what the second fetch is."""
    from workers import extract

    fps = [Fingerprints.of(extract.from_page(html, "http://127.0.0.1/a").text, (),
                           SETTINGS.near_min_shingles) for html in (first, second)]  # fmt: skip
    return decide(Known(own=mark(A, fps[0]).pack()), Item(A, [A]), fps[1], SETTINGS).event


def test_a_new_timestamp_or_view_count_in_the_page_markup_changes_nothing() -> None:
    before = _page_with_meta("08:05", "312", in_text=False)
    after = _page_with_meta("16:41", "9,871", in_text=False)
    assert _decide_again(before, after) == "duplicate"


def test_a_timestamp_written_into_a_short_storys_text_is_an_update() -> None:
    """The limit of the rule, as documented in the README: a line of text the extractor keeps
    moves a 190-word story's SimHash 7 bits, and it is published again as `updated`."""
    before = _page_with_meta("08:05", "312", in_text=True)
    after = _page_with_meta("16:41", "9,871", in_text=True)
    assert _decide_again(before, after) == "updated"


def test_rule_2_another_url_of_the_story_seen() -> None:
    d = decide(Known(others=[None, b"x"]), Item(A, [A, B, C]), FP, SETTINGS)
    assert (d.event, d.why) == ("duplicate", f"url:{C}")


def test_rule_3_canonical_honoured_only_when_known_and_claims_checked_by_text() -> None:
    copy = Item(A, [A], canonical_id=B)
    assert decide(Known(canonical=b"m"), copy, FP, SETTINGS).duplicate_of == B
    unknown = decide(Known(), copy, FP, SETTINGS)
    assert (unknown.event, unknown.why, unknown.duplicate_of) == (
        "created", f"canonical_unverified:{B}", B)  # fmt: skip
    # the original arrives after a copy (C) that named it: a duplicate only with the copy's text
    claimed = Known(claimed_by=C, marks={C: mark(C)})
    assert decide(claimed, Item(B, [B]), FP, SETTINGS).why == f"canonical-claim:{C}"
    hostile = Known(claimed_by=C, marks={C: mark(C, far(FP, SETTINGS.near_max_distance + 1))})
    assert decide(hostile, Item(B, [B]), FP, SETTINGS).event == "created"


def test_rule_4_the_same_text_under_another_article() -> None:
    d = decide(Known(owner=B, marks={B: mark(B)}), Item(A, [A]), FP, SETTINGS)
    assert (d.event, d.duplicate_of) == ("duplicate", B)
    assert decide(Known(owner=A), Item(A, [A]), FP, SETTINGS).event == "created"  # itself
    # a post of the same feed under another title: kept, flagged, past the owner check
    sib = Known(owner=B, marks={B: mark(B, feed="f", title="One")})
    d = decide(sib, Item(A, [A], tag("f"), tag("Two")), FP, SETTINGS)
    assert (d.event, d.possible_duplicate_of, d.check_owner) == ("created", B, False)


def test_rule_5_near_copies_need_bands_or_a_close_simhash_and_enough_shingles() -> None:
    me = Item(A, [A])
    two = Known(shared=[(B, SETTINGS.near_min_bands)], marks={B: mark(B, far(FP, 40))})
    d = decide(two, me, FP, SETTINGS)
    assert (d.event, d.duplicate_of, d.cluster_id) == ("near_duplicate", B, B)
    close = mark(B, far(FP, SETTINGS.near_max_distance))
    assert decide(Known(shared=[(B, 1)], marks={B: close}), me, FP, SETTINGS).event == (
        "near_duplicate")  # fmt: skip
    distant = mark(B, far(FP, SETTINGS.near_max_distance + 1))
    assert decide(Known(shared=[(B, 1)], marks={B: distant}), me, FP, SETTINGS).event == "created"
    # a candidate without a mark (expired, or not an article) is skipped, the next one checked
    skip = Known(shared=[(C, 4), (B, 4)], marks={B: mark(B)})
    assert decide(skip, me, FP, SETTINGS).duplicate_of == B
    short = Fingerprints.of("One line of its own.", (), SETTINGS.near_min_shingles)
    assert decide(Known(shared=[(B, 4)], marks={B: mark(B)}), me, short, SETTINGS).event == (
        "created")  # fmt: skip


def test_a_near_copy_of_the_same_feed_with_another_title_is_flagged_not_dropped() -> None:
    known = Known(shared=[(B, 4)], marks={B: mark(B, feed="f", title="One")})
    d = decide(known, Item(A, [A], tag("f"), tag("Two")), FP, SETTINGS)
    assert (d.event, d.possible_duplicate_of) == ("created", B)
    again = decide(known, Item(A, [A], tag("f"), tag("One")), FP, SETTINGS)  # the same post
    assert again.event == "near_duplicate"


# ---------------------------------------------------------------- read: one round trip


class CountingConnection(redis.Connection):
    """Counts what is sent: one send per command, one per pipeline (all its commands packed)."""

    sends = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.sends += 1
        super().send_packed_command(command, check_health)


def counting_client(r: redis.Redis) -> redis.Redis:
    kw = r.connection_pool.connection_kwargs
    pool = redis.ConnectionPool(connection_class=CountingConnection, host=kw["host"],
                                port=kw["port"], db=kw.get("db", 0))  # fmt: skip
    return redis.Redis(connection_pool=pool)


def write(store: SeenStore, field: bytes, value: bytes, generations_back: int = 0) -> None:
    key = store.key(store.generation() - generations_back, field)
    store.r.hset(key, field, value)


def test_read_is_one_round_trip_with_candidates_owner_and_claim(r: redis.Redis) -> None:
    client = counting_client(r)
    store = SeenStore(client, Keys(), 30, shards=7)  # not a power of two: the Lua modulo
    ids = [f"{n:02x}" * 8 for n in range(1, 9)]
    # ids[0..5] share 4, 3, 3, 2, 1, 1 of the asking text's bands; ids[6] holds its text
    # (owner), ids[7] is a copy naming it as its canonical (a claim); marks spread over the
    # readable generations and shards
    shares = [4, 3, 3, 2, 1, 1]
    for n, aid in enumerate(ids):
        write(store, url_field(aid), mark(aid, feed=f"f{n}").pack(), n % GENERATIONS)
    for b, value in enumerate(FP.bands):
        members = b"".join(bytes.fromhex(aid) for aid, s in zip(ids, shares, strict=False) if s > b)
        write(store, band_field(b, value), members[: 8 * 2], 0)  # some in this generation ...
        write(store, band_field(b, value), members[8 * 2 :] + bytes.fromhex(A), 1)  # ... some not
    write(store, hash_field(FP.content_hash), bytes.fromhex(ids[6]), 2)
    write(store, claim_field(A), bytes.fromhex(ids[7]), 1)
    write(store, url_field(B), bytes.fromhex(C))  # another URL of the asking story: an alias

    item = Item(A, [A, B], canonical_id=D)
    read(store, item, FP)  # the first call loads the script (and opens the connection)
    before = CountingConnection.sends
    known = read(store, item, FP)
    assert CountingConnection.sends - before == 1
    assert known.shared == [(ids[0], 4), (ids[1], 3), (ids[2], 3), (ids[3], 2), (ids[4], 1)]
    assert len(known.shared) == CANDIDATES  # ids[5] is the sixth: not checked
    assert (known.owner, known.claimed_by) == (ids[6], ids[7])
    assert set(known.marks) == {*ids[:5], ids[6], ids[7]}
    assert all(known.marks[aid] == UrlMark.unpack(mark(aid, feed=f"f{n}").pack())
               for n, aid in enumerate(ids) if aid in known.marks)  # fmt: skip
    assert (known.own, known.others, known.canonical) == (None, [bytes.fromhex(C)], None)

    lone = Fingerprints.of("Nothing like it anywhere.", (), 0)  # no candidate, no owner
    before = CountingConnection.sends
    empty = read(store, Item(D, [D]), lone)
    assert CountingConnection.sends - before == 1
    assert (empty.shared, empty.marks, empty.owner, empty.own) == ([], {}, "", None)
    client.close()


def two_step(store: SeenStore, item: Item, fp: Fingerprints) -> Known:
    """The read as it was before the script: two batched reads, ranked in Python."""
    fields = [url_field(u) for u in item.url_ids] + [hash_field(fp.content_hash),
                                                      claim_field(item.aid)]  # fmt: skip
    values, members = store.lookup(fields, fp.bands)
    n = len(item.url_ids)
    known = Known(own=values[0], others=values[1:n])
    known.owner = bytes(values[n]).hex() if values[n] else ""
    known.claimed_by = bytes(values[n + 1]).hex() if values[n + 1] else ""
    counts: Counter[str] = Counter()
    for ids in members:
        counts.update(set(ids) - {item.aid})
    known.shared = counts.most_common(CANDIDATES)
    wanted = list(dict.fromkeys([*(c for c, _ in known.shared), known.owner, known.claimed_by]))
    wanted = [w for w in wanted if w]
    for aid, m in zip(wanted, store.url_marks(wanted), strict=True):
        if m is not None:
            known.marks[aid] = m
    return known


def test_read_finds_what_the_two_step_read_found(r: redis.Redis) -> None:
    """Random archives with many band collisions: the same marks, owners and candidate counts
    as the Python ranking (ties among equally shared candidates may come in another order)."""
    rng = random.Random(21)
    store = SeenStore(r, Keys(), 30, shards=13)
    pool = [rng.getrandbits(32) for _ in range(6)]  # few band values: buckets overlap a lot
    ids = [f"{rng.getrandbits(64):016x}" for _ in range(40)]
    for aid in ids:
        sim = rng.getrandbits(64)
        write(store, url_field(aid), UrlMark(aid, "00" * 8, sim, 300, aid).pack(),
              rng.randrange(GENERATIONS))  # fmt: skip
        for b in range(fingerprint.MH_BANDS):
            field = band_field(b, rng.choice(pool))
            key = store.key(store.generation() - rng.randrange(GENERATIONS), field)
            r.hset(key, field, (r.hget(key, field) or b"") + bytes.fromhex(aid))
        if rng.random() < 0.3:
            write(store, hash_field(aid * 2), bytes.fromhex(rng.choice(ids[:5])))
    for n in range(30):
        aid = rng.choice(ids) if n % 3 else f"{n:016x}"
        fp = Fingerprints(aid * 2, 0, [rng.choice(pool) for _ in range(4)], 300, 300)
        item = Item(aid, [aid])
        got, want = read(store, item, fp), two_step(store, item, fp)
        assert (got.own, got.others, got.owner, got.claimed_by) == (
            want.own, want.others, want.owner, want.claimed_by)  # fmt: skip
        assert [c for _, c in got.shared] == [c for _, c in want.shared]
        everyone = Counter(dict(two_step_counts(store, item, fp)))
        assert all(everyone[aid_] == c for aid_, c in got.shared)
        assert set(got.marks) <= {a for a, _ in got.shared} | {got.owner, got.claimed_by}
        assert all(store.url_mark(a) == m for a, m in got.marks.items())
        assert all(a in got.marks for a, _ in got.shared)  # every candidate here has a mark


def two_step_counts(store: SeenStore, item: Item, fp: Fingerprints) -> list[tuple[str, int]]:
    counts: Counter[str] = Counter()
    for ids in store.band_members(fp.bands):
        counts.update(set(ids) - {item.aid})
    return list(counts.items())
