"""Commands that need no Redis: `extract`, `classify` and its `train`/`refit`."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import click

from ingest.cli.app import App, cli, load_settings, pass_app


def read_page(path: str, cap: int) -> bytes:
    """A page file (or .gz), at most `cap` bytes once decompressed: a compression bomb or a huge
    file is refused as the fetcher refuses one (`fetch.max_bytes`), never read whole."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw: bytes = f.read(cap + 1)
    if len(raw) > cap:
        raise ValueError(f"over the {cap}-byte cap (fetch.max_bytes)")
    return raw


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--url", help="The page's URL (with a single file).")
@pass_app
def extract(app: App, files: tuple[str, ...], url: str | None) -> None:
    """HTML (or .html.gz) files to JSON lines {path, url, title, text, ...}. Bounded as in the
    worker: fetch.max_bytes, extract.max_tags and extract.cpu_limit (`too_complex`)."""
    from workers import limits
    from workers.decode import decode
    from workers.extract import from_page

    if url and len(files) != 1:
        raise click.BadParameter("--url needs exactly one file", param_hint="--url")
    s = app.settings
    failures = 0
    for path in files:
        try:
            raw = read_page(path, s.fetch.max_bytes)
            limits.check_markup(raw, s.extract.max_tags)
            html, charset = decode(raw)
            with limits.cpu_limit(s.extract.cpu_limit):
                ex = from_page(html, url or "")
        except (OSError, EOFError, ValueError, gzip.BadGzipFile, limits.TooComplex) as exc:
            reason = "too_complex: " if isinstance(exc, limits.TooComplex) else ""
            click.echo(f"error: {path}: {reason}{exc}", err=True)
            failures += 1
            continue
        click.echo(json.dumps({
            "path": path, "url": url or ex.canonical_url, "title": ex.title, "text": ex.text,
            "authors": ex.authors, "published_at": ex.date,  # ISO 8601 UTC, seconds, Z
            "site_name": ex.site_name,
            "image": ex.image, "description": ex.description, "charset": charset,
            "extraction": {"method": ex.method, **ex.quality},
        }, ensure_ascii=False))  # fmt: skip
    if failures:
        sys.exit(1)


@cli.group(invoke_without_command=True)
@click.option("--input", "input_path", type=click.Path(exists=True, dir_okay=False, allow_dash=True),
              help="JSON lines {id, title, text}; default (or -) stdin.")  # fmt: skip
@click.option("--config", "config_", help="Settings TOML.")
@click.pass_context
def classify(ctx: click.Context, input_path: str | None, config_: str | None) -> None:
    """JSON lines {id, title, text} to JSON lines {id, language, topics} (with the configured
    model when classify.model is set, else the lexicon); `classify train` fits a model.
    Optional fields, as a worker has them: language (the feed's declared one), tags (the
    item's feed tags), topic (the feed's configured IPTC code, a prior)."""
    if ctx.invoked_subcommand is not None:
        return
    from workers import classify as clf
    from workers.language import detect

    app = ctx.find_object(App)
    assert app is not None
    if config_:
        app.settings = load_settings(config_)
    cfg = app.settings.classify
    lexicon = clf.cached_lexicon(cfg.taxonomy)
    model = None
    if cfg.model:
        from workers.topic_model import ModelFormatError, TopicModel, assign

        try:
            model = TopicModel.load(cfg.model)
        except (OSError, ModelFormatError) as exc:
            raise click.ClickException(f"classify.model {cfg.model}: {exc}") from exc
    stream = (open(input_path, encoding="utf-8")  # noqa: SIM115
              if input_path and input_path != "-" else sys.stdin)  # fmt: skip
    bad = 0
    with stream:
        for n, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
                if not isinstance(doc, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                click.echo(f"error: line {n}: {exc}", err=True)
                bad += 1
                continue
            title, text = str(doc.get("title") or ""), str(doc.get("text") or "")
            # as the worker sees an item: its feed tags, and its feed's configured topic (prior)
            raw_tags = doc.get("tags") or []
            tags = [raw_tags] if isinstance(raw_tags, str) else (
                [str(t) for t in raw_tags] if isinstance(raw_tags, list) else [])  # fmt: skip
            prior = str(doc.get("topic") or "")
            lang = detect(f"{title}\n{text}", declared=str(doc.get("language") or ""),
                          allowed=tuple(cfg.languages))  # fmt: skip
            if model is not None:
                found = assign(model, lexicon, title, text, tags=tags, prior=prior,
                               max_topics=cfg.max_topics, min_score=cfg.min_score,
                               trust=cfg.model_trust, lang=lang)  # fmt: skip
            else:
                found = clf.topics(lexicon, title, text, tags=tags, prior=prior,
                                   max_topics=cfg.max_topics, min_score=cfg.min_score,
                                   lang=lang)  # fmt: skip
            if cfg.local_labels:
                clf.localise(lexicon, found, lang)
            click.echo(json.dumps({
                "id": doc.get("id"),
                "language": lang,
                "topics": found,
            }, ensure_ascii=False))  # fmt: skip
    if bad:
        click.echo(f"{bad} line(s) skipped", err=True)


@classify.command("train")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", default="var/topic-model.npz", show_default=True, help="Model file.")
@click.option(
    "--self-label",
    is_flag=True,
    help="PATH is unlabelled: label it with the lexicon (confident cases) and train.",
)
@click.option(
    "--min-score",
    type=float,
    default=0.35,
    show_default=True,
    help="With --self-label: the lexicon's least score to trust.",
)
@click.pass_context
def classify_train(ctx: click.Context, path: str, out: str, self_label: bool,
                   min_score: float) -> None:  # fmt: skip
    """Fit a topic model on JSON lines {title, text, label} (label: an IPTC code, e.g.
    medtop:04000000), or on an unlabelled archive with --self-label. Set classify.model to
    the file written (NEWS_INGEST_CLASSIFY_MODEL) to make the workers use it."""
    try:
        from workers import topic_model
    except ImportError as exc:  # depends on the install
        raise click.ClickException("training needs scikit-learn: pip install '.[train]'") from exc
    from workers import classify as clf

    app = ctx.find_object(App)
    assert app is not None
    docs, bad = [], 0
    for n, line in enumerate(Path(path).read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
            title, text = str(doc.get("title") or ""), str(doc.get("text") or "")
            label = str(doc.get("label") or "")
            if not text or (not self_label and not label):
                raise ValueError("needs text" + ("" if self_label else " and label"))
        except (ValueError, AttributeError) as exc:
            click.echo(f"error: line {n}: {exc}", err=True)
            bad += 1
            continue
        docs.append((title, text, label))
    if self_label:
        lexicon = clf.cached_lexicon(app.settings.classify.taxonomy)
        docs = topic_model.self_label(lexicon, [(t, x) for t, x, _l in docs], min_score)
    try:
        model = topic_model.train(docs, self_labelled=self_label)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    counts: dict[str, int] = {}
    for _t, _x, label in docs:
        counts[label] = counts.get(label, 0) + 1
    click.echo(json.dumps({"model": out, "documents": len(docs), "skipped": bad,
                           "labels": counts}))  # fmt: skip


@classify.command("refit")
@click.option("--language", "languages", multiple=True,
              help="Only this language (ISO 639-1); repeatable. Default: every archived one.")
@click.option("--force", is_flag=True, help="Refit even a model younger than classify.learn_every.")
@click.pass_context
def classify_refit(ctx: click.Context, languages: tuple[str, ...], force: bool) -> None:
    """Refit the models learnt from the stream now (what the scheduled job does; README,
    "Learning topics"), and install those that pass the agreement gate."""
    from workers import learn

    app = ctx.find_object(App)
    assert app is not None
    with app.redis() as (_url, r):
        results = learn.refit(app.settings, r, langs=languages, force=force)
    for o in results:
        click.echo(json.dumps({"language": o.lang, "outcome": o.outcome, "detail": o.detail,
                               "documents": o.documents, "agreement": o.agreement,
                               "previous": o.previous, "version": o.version}))  # fmt: skip
