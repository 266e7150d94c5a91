"""Pure article logic: cleaner, fingerprints, decoding, classification."""

import pytest

from tests import pages
from tests.conftest import ROOT
from workers import classify, fingerprint, language
from workers.clean import clean
from workers.decode import decode

LEX = classify.load_lexicon(ROOT / "ingest" / "defaults" / "taxonomy.yaml")
REPORT = (
    "The government said troops had launched an offensive against rebel positions overnight.\n"
    "A ceasefire agreed last month collapsed after an attack on an army checkpoint.\n"
    "Leave a Reply\nYour email address will not be published. Required fields are marked *\n"
    "Comment\nName\n"
)


def test_comment_form_tail_is_cut() -> None:
    text, removed = clean(REPORT)
    assert "Leave a Reply" not in text and "will not be published" not in text
    assert text.startswith("The government said troops")
    assert removed


def test_share_bar_and_copyright_lines_are_dropped_but_real_paragraphs_kept() -> None:
    body = "Share on Facebook\nPeople were asked to share their stories of the flood with the council, which said it would publish them.\n© 2024 Daily News"
    text, _ = clean(body)
    assert (
        text
        == "People were asked to share their stories of the flood with the council, which said it would publish them."
    )


def test_promotional_closing_sentence_is_trimmed() -> None:
    text, _ = clean(
        "First paragraph of the story.\nThe mission ends in May. Follow us on Twitter @spacedotcom."
    )
    assert text.endswith("The mission ends in May.")


def test_fingerprints_ignore_typography_and_find_near_copies() -> None:
    base = " ".join(f"word{i} sentence{i % 7} story" for i in range(200))
    assert fingerprint.content_hash(base) == fingerprint.content_hash(
        base.upper().replace(" ", "  ")
    )
    near = fingerprint.simhash(base + " one added closing sentence here")
    assert fingerprint.distance(fingerprint.simhash(base), near) <= 3
    other = fingerprint.simhash(" ".join(f"other{i} text{i % 5}" for i in range(200)))
    assert fingerprint.distance(fingerprint.simhash(base), other) > 10


@pytest.mark.parametrize(
    ("body", "ctype", "expected"),
    [
        ("Café “quoted”".encode("cp1252"), "text/html; charset=iso-8859-1", "Café “quoted”"),
        ("Café".encode(), "text/html; charset=iso-8859-1", "Café"),  # wrong declaration
        ("新闻报道".encode("gb18030"), "text/html; charset=gb2312", "新闻报道"),
        ("\ufeffnews".encode("utf-16-le"), "", "news"),
    ],
)
def test_decoding_never_produces_mojibake(body: bytes, ctype: str, expected: str) -> None:
    text, _ = decode(body, ctype)
    assert text == expected


def test_meta_charset_after_the_first_kilobyte() -> None:
    page = b"<html><head>" + b"<!-- pad -->" * 200 + b'<meta charset="windows-1252"></head>'
    page += "<p>Schön</p>".encode("cp1252")
    text, charset = decode(page)
    assert "Schön" in text and charset == "cp1252"


@pytest.mark.parametrize(
    ("title", "text", "code"),
    [
        ("Rebels attack army base as ceasefire collapses", REPORT, "medtop:16000000"),
        (
            "Striker scores twice as United win the league",
            "The club's manager praised the squad after the match at the stadium.",
            "medtop:15000000",
        ),
        (
            "Central bank raises interest rates to curb inflation",
            "Markets fell as investors weighed the impact on company profits.",
            "medtop:04000000",
        ),
        (
            "Élection présidentielle : le candidat de l'opposition en tête",
            "Le scrutin a été marqué par une forte participation des électeurs.",
            "medtop:11000000",
        ),
        (
            "Neue Impfkampagne gegen Masern in Krankenhäusern",
            "Ärzte und Patienten warten auf die Behandlung.",
            "medtop:07000000",
        ),
    ],
)
def test_top_topic(title: str, text: str, code: str) -> None:
    topics = classify.topics(LEX, title, text)
    assert topics and topics[0]["code"] == code, topics
    assert sum(t["score"] for t in topics) <= 1


def test_weak_evidence_gives_no_topic() -> None:
    assert classify.topics(LEX, "Hello", "A short note.") == []


def test_language_with_declared_prior_and_und() -> None:
    assert language.detect("Le gouvernement a annoncé mardi une réforme des retraites.") == "fr"
    assert language.detect("ok") == "und"
    assert language.detect("ok", declared="de") == "de"


def index_page() -> str:
    teasers = "".join(
        f'<div class="teaser"><h2><a href="/story/{i}">Headline number {i} about the city council '
        f'and its plans</a></h2><p><a href="/story/{i}">Read the full story about plan {i} '
        f"here</a></p></div>"
        for i in range(14)
    )
    return f"<html><head><title>News</title></head><body><main>{teasers}</main></body></html>"


def test_index_page_of_teasers_is_not_an_article() -> None:
    from workers import extract

    page = extract.from_page(index_page(), "http://127.0.0.1/news")
    chosen = extract.choose(page, "", 250)
    assert page.quality["link_share"] > 0.5
    assert chosen.text == ""  # never a glued-together body
    assert (chosen.quality["gate"], chosen.quality["page_outcome"]) == ("index_page", "not_article")


def test_link_share_counts_only_link_text_lines() -> None:
    from workers.extract import link_share

    anchors = {"Markets close higher on Friday", "Storm warning for the coast"}
    body = "Markets close higher on Friday\nStorm warning for the coast\nA real paragraph here."
    assert 0.7 < link_share(body, anchors) < 0.8
    assert link_share("A real paragraph of the story, with words.", anchors) == 0.0


def test_page_that_is_not_the_feeds_story_yields_to_the_feed() -> None:
    from workers import extract

    page = extract.Extracted(text=" ".join(pages.paragraphs(pages.BOLIVIA)), method="trafilatura")
    feed = " ".join(pages.paragraphs(pages.AUSTRIA))
    chosen = extract.choose(page, feed, 250)
    assert chosen.method == "feed" and chosen.quality["gate"] == "off_topic"
    assert chosen.quality["feed_overlap"] < 0.2
    same = extract.choose(extract.Extracted(text=feed, method="trafilatura"), feed[:600], 250)
    assert same.method == "trafilatura" and same.quality["gate"] == "pass"


STORY = [
    "The council voted on Tuesday to close the old bridge to traffic from next month.",
    "Engineers found cracks in two of its supports during an inspection in March, the report said.",
    "A temporary footbridge will open in June, and a new road bridge is planned for 2027.",
]


@pytest.mark.parametrize(
    ("family", "junk"),
    [
        ("comment form", ["Leave a Reply", "Your email address will not be published.", "Name"]),
        ("share bar", ["Share this article", "Facebook | Twitter | Email"]),
        ("newsletter box", ["Get our morning briefing in your inbox",
                            "Enter your email address", "Thanks for signing up!"]),
        ("cookie notice", ["We use cookies to improve your experience.",
                           "By continuing to browse you agree to our cookie policy."]),
        ("related posts", ["Related articles", "Markets close higher on Friday",
                           "Storm warning for the coast"]),
        ("caption credit", ["Image caption", "Photo: Jane Doe/Reuters", "Jane Doe/Getty Images"]),
    ],
)  # fmt: skip
def test_each_boilerplate_family_is_removed_and_the_story_kept(
    family: str, junk: list[str]
) -> None:
    middle = family in ("share bar", "cookie notice", "caption credit")
    lines = [STORY[0], *junk, *STORY[1:]] if middle else [*STORY, *junk]
    text, removed = clean("\n".join(lines))
    assert text == "\n".join(STORY), family
    assert removed
