from ingest.core.urls import article_id, canonicalize, resolve_amp


def test_tracking_parameters_host_case_ports_and_fragments_are_dropped() -> None:
    url = "HTTP://News.Example.COM:80/story/?utm_source=rss&id=7&fbclid=x&gclid=y&mc_cid=z#top"
    assert canonicalize(url) == "http://news.example.com/story/?id=7"


def test_meaningful_query_parameters_survive_and_are_sorted() -> None:
    assert canonicalize("https://x.org/a?b=2&a=1") == "https://x.org/a?a=1&b=2"


def test_hashbang_routes_are_kept() -> None:
    assert canonicalize("https://x.org/#!/story/1") == "https://x.org/#!/story/1"


def test_article_id_is_scheme_blind_and_16_hex() -> None:
    a = article_id("http://x.org/a?utm_medium=feed")
    assert a == article_id("https://X.org/a")
    assert len(a) == 16 and int(a, 16) >= 0
    assert a != article_id("https://x.org/b")


def test_amp_urls_map_to_their_article() -> None:
    assert resolve_amp("https://amp.x.org/news/story/amp/") == "https://x.org/news/story"
    assert resolve_amp("https://x.org/news/story.amp") == "https://x.org/news/story"
