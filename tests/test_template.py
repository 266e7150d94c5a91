"""Site template learning (workers/template.py) against a real Valkey."""

from __future__ import annotations

import redis

from ingest.core.keys import Keys
from ingest.core.settings import TemplateSettings
from ingest.core.urls import article_id
from workers.template import SiteTemplates, fingerprint, to_drop

KEYS = Keys()
TEMPLATE = ["Sign up for the free daily newsletter", "Most read", "© 2024 Example Media Ltd"]


PLACES = ["Lyon", "Bergen", "Tartu", "Porto", "Ghent", "Split", "Cork", "Graz", "Turku", "Bari"]


def story(n: int) -> list[str]:
    """Two story lines no other story shares."""
    a, b = PLACES[n % 10], PLACES[n // 10 % 10] + "x" * (n // 100)
    return [f"The council of {a} and {b} met on Monday to vote on the harbour plan.",
            f"Residents of {a} {b} told reporters the vote came too late."]  # fmt: skip


def sid(n: int) -> str:
    return article_id(f"https://example.com/story/{n}")


def test_fingerprint_ignores_case_spacing_and_punctuation_not_digits() -> None:
    assert fingerprint("© 2024 Example  Media Ltd") == fingerprint("© 2024 example media ltd.")
    assert fingerprint("The index rose 0.3% to 7,412.") != fingerprint("The index rose 0.4% to 7,415.")
    assert fingerprint("Most read") != fingerprint("Most shared")
    assert fingerprint(" -- ") is None


def test_to_drop_discounts_the_article_itself() -> None:
    assert to_drop([4, 3, 0], known=False, min_articles=4) == [True, False, False]
    assert to_drop([4, 5], known=True, min_articles=4) == [False, True]


def test_lines_on_enough_other_articles_are_dropped(r: redis.Redis) -> None:
    t = SiteTemplates(r, KEYS, TemplateSettings(min_articles=3))
    outs = [t.apply("example.com", sid(n), "\n".join(TEMPLATE + story(n))) for n in range(6)]
    assert [len(v.dropped) for v in outs] == [0, 0, 0, 3, 3, 3]
    for n, verdict in enumerate(outs):
        assert verdict.text.splitlines()[-2:] == story(n)  # no story sentence lost
    assert all(v.learned for v in outs)


def test_other_sites_do_not_count(r: redis.Redis) -> None:
    t = SiteTemplates(r, KEYS, TemplateSettings(min_articles=2))
    for n in range(4):
        t.apply(f"site{n}.example", sid(n), "\n".join(TEMPLATE + story(n)))
    assert t.apply("fresh.example", sid(9), "\n".join(TEMPLATE)).dropped == []


def test_updates_of_one_story_count_once(r: redis.Redis) -> None:
    """A quote repeated in every update of one article is that story's, never its template."""
    t = SiteTemplates(r, KEYS, TemplateSettings(min_articles=2))
    quote = '"We will rebuild the bridge by spring," the mayor said.'
    for version in range(6):
        verdict = t.apply("example.com", sid(1), f"Update {version}: the river fell.\n{quote}")
        assert quote in verdict.text.splitlines()
        assert verdict.known == (version > 0)
    # one other article quoting it too is still below the threshold (2 OTHER articles)
    assert quote in t.apply("example.com", sid(2), quote + "\nOther story.").text


def test_counts_decay_with_the_window(r: redis.Redis) -> None:
    cfg = TemplateSettings(min_articles=2, window_days=4, generations=2)
    t = SiteTemplates(r, KEYS, cfg)
    day = 86400.0
    start = 1_700_000_000.0 // (2 * day) * (2 * day)
    for n in range(3):
        t.apply("example.com", sid(n), "Most read\n" + story(n)[0], now=start)
    fresh = "Most read\n" + story(10)[0]
    assert t.apply("example.com", sid(10), fresh, now=start + day).dropped == ["Most read"]
    # two generations later every count is outside the window
    late = t.apply("example.com", sid(11), "Most read\n" + story(11)[0], now=start + 4 * day + 1)
    assert late.dropped == []


def test_memory_per_site_is_bounded(r: redis.Redis) -> None:
    """A generation takes at most max_lines fingerprints and max_stories ids; the memory that
    costs is what docs/benchmarks.md quotes for the defaults."""
    cfg = TemplateSettings()
    t = SiteTemplates(r, KEYS, cfg)
    now = 1_700_000_000.0
    for n in range(cfg.max_stories + 50):
        t.apply("big.example", sid(n), "\n".join(story(n) + [f"{line} {i}" for line in story(n)
                                                 for i in "abc"]), now=now)  # fmt: skip
    gen = int(now // cfg.generation_seconds)
    lines, stories = KEYS.template_lines("big.example", gen), KEYS.template_stories(
        "big.example", gen)  # fmt: skip
    assert r.hlen(lines) == cfg.max_lines
    assert r.scard(stories) == cfg.max_stories
    used = int(r.memory_usage(lines) or 0) + int(r.memory_usage(stories) or 0)  # type: ignore[arg-type]
    print(f"one full generation of one site: {used} bytes")
    assert used < 6_000  # listpack hash + intset: docs/benchmarks.md quotes about 5.8 KB
    # a full generation still counts what it knows: the template keeps being recognised
    before = int(r.hlen(lines))  # type: ignore[arg-type]
    t.apply("big.example", sid(99_999), story(1)[0], now=now)
    assert int(r.hlen(lines)) == before  # type: ignore[arg-type]


def test_sites_beyond_the_total_bound_learn_nothing(r: redis.Redis) -> None:
    t = SiteTemplates(r, KEYS, TemplateSettings(max_sites=2, min_articles=1))
    assert t.apply("a.example", sid(1), "Most read").learned
    assert t.apply("b.example", sid(2), "Most read").learned
    assert not t.apply("c.example", sid(3), "Most read").learned
    assert t.apply("c.example", sid(4), "Most read\n" + story(4)[0]).dropped == []
    assert t.apply("a.example", sid(5), "Most read\n" + story(5)[0]).dropped == ["Most read"]


def test_a_republished_copy_is_left_whole_for_dedup(r: redis.Redis) -> None:
    t = SiteTemplates(r, KEYS, TemplateSettings(min_articles=3))
    text = "\n".join(TEMPLATE + story(1))
    outs = [t.apply("example.com", sid(n), text) for n in range(6)]
    assert all(v.text == text and v.dropped == [] for v in outs)
    assert [v.copy for v in outs] == [False, False, False, True, True, True]


def test_a_huge_page_is_judged_on_its_first_lines_only(r: redis.Redis) -> None:
    t = SiteTemplates(r, KEYS, TemplateSettings())
    text = "\n".join(f"Line {n} of a very long page about {PLACES[n % 10]}." for n in range(3000))
    verdict = t.apply("example.com", sid(1), text)
    assert verdict.text == text and verdict.learned
