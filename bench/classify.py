"""Topic and language classification on ../shared/data/classification.

    python bench/classify.py [--model PATH] [--self-label [--folds 5] [--per-language]
                             [--max-train N]]

Top-topic accuracy and macro-F1 on MasakhaNEWS English and French dev (labels mapped to IPTC
Media Topics as the data's README says), language accuracy on the SIB-200 sentences (overall and
on the languages py3langid supports), and articles per CPU-second, for the default lexicon and,
with --model, for a trained model (`news-ingest classify train`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "classification"

from workers import classify, language  # noqa: E402

MAPPING = {
    "business": "medtop:04000000", "entertainment": "medtop:01000000",
    "health": "medtop:07000000", "politics": "medtop:11000000", "sports": "medtop:15000000",
    "technology": "medtop:13000000",
}  # fmt: skip


FILES = ("masakhanews_eng_dev.jsonl", "masakhanews_fra_dev.jsonl")


def rows(name: str) -> list[dict[str, str]]:
    return [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]


def macro_f1(gold: list[str], pred: list[str]) -> float:
    labels = sorted(set(gold))
    f1s = []
    for label in labels:
        tp = sum(g == p == label for g, p in zip(gold, pred, strict=True))
        fp = sum(p == label and g != label for g, p in zip(gold, pred, strict=True))
        fn = sum(g == label and p != label for g, p in zip(gold, pred, strict=True))
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1s.append(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
    return sum(f1s) / len(f1s)


WARM_PASSES = 10


def topics_of(predict, docs: list[dict[str, str]]) -> tuple[list[str], float, float, float]:  # type: ignore[no-untyped-def]
    """Predictions and articles per CPU-second of the topic step alone (each text's language is
    detected first, as the worker does; language ID is timed on its own below): on a first
    pass (cold: the tokeniser's and lexicon's memos empty, as in a worker's first minutes), and
    the best and the median of WARM_PASSES more (warm: a worker after its first few hundred
    articles). The best is the code's own speed, as `timeit` reads it: on this shared VM a
    pass of a fifth of a second is slowed by whatever else runs, up to twice (the median shows
    how much)."""
    langs = [language.detect(f"{d['title']}\n{d['text']}") for d in docs]
    speeds = []
    for _round in range(1 + WARM_PASSES):
        started = time.process_time()
        out = [predict(d["title"], d["text"], lang) for d, lang in zip(docs, langs, strict=True)]
        speeds.append(len(docs) / max(time.process_time() - started, 1e-9))
    return out, speeds[0], max(speeds[1:]), statistics.median(speeds[1:])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="a model file written by `news-ingest classify train`")
    ap.add_argument(
        "--self-label",
        action="store_true",
        help="also train on the dev texts labelled by the lexicon, and score it",
    )
    ap.add_argument(
        "--folds",
        type=int,
        default=0,
        help="with --self-label: K >= 2 trains K models, each scoring only the texts it was not "
        "trained on (as in service, where today's articles are not in the archive); "
        "default: one model trained on all the texts",
    )
    ap.add_argument("--threshold", type=float, default=None,
                    help="with --self-label: the lexicon's least score for a pseudo-label")
    ap.add_argument("--c", type=float, default=None, help="with --self-label: regularisation C")
    ap.add_argument("--balanced", action=argparse.BooleanOptionalAction, default=None,
                    help="with --self-label: balanced class weights (default: the recipe's)")
    ap.add_argument("--min-df", type=int, default=None,
                    help="with --self-label: words in at least this many training texts")
    ap.add_argument("--per-language", action="store_true",
                    help="with --self-label: one model per language, trained on that language's "
                    "texts only, as the service learns them (default: one model on both sets)")
    ap.add_argument("--max-train", type=int, default=0,
                    help="with --self-label --folds: each model sees at most this many archive "
                    "texts (the first of its training folds): how big an archive must be")
    args = ap.parse_args()
    lex = classify.cached_lexicon(str(ROOT / "ingest" / "defaults" / "taxonomy.yaml"))

    def lexicon(title: str, text: str, lang: str) -> str:
        found = classify.topics(lex, title, text, lang=lang)
        return found[0]["code"] if found else "none"

    predictors = {"lexicon": lexicon}

    def with_model(model: Any) -> Any:  # as the workers use it (workers.topic_model.assign)
        from workers.topic_model import assign

        def predict(title: str, text: str, lang: str) -> str:
            found = assign(model, lex, title, text, lang=lang)
            return found[0]["code"] if found else "none"

        return predict

    if args.self_label:  # the dev texts as an unlabelled archive, labelled by the lexicon
        from workers import topic_model
        from workers.topic_model import self_label

        threshold = topic_model.SELF_LABEL_MIN if args.threshold is None else args.threshold
        recipe: dict[str, Any] = {}
        if args.balanced is not None:
            recipe["balanced"] = args.balanced
        if args.c is not None:
            recipe["c"] = args.c
        if args.min_df is not None:
            recipe["min_df"] = args.min_df

        def train(docs: list[tuple[str, str, str]], self_labelled: bool) -> Any:
            model = topic_model.train(docs, self_labelled=self_labelled, **recipe)
            sizes.append(len(model.to_bytes()))
            return model

        def self_label_(lex: Any, docs: list[tuple[str, str]]) -> Any:
            return self_label(lex, docs, threshold)

        sizes: list[int] = []
        # the unlabelled archives: both sets as one, or each language's own (as in service)
        archives = ([[(d["title"], d["text"]) for d in rows(f)] for f in FILES]
                    if args.per_language else
                    [[(d["title"], d["text"]) for f in FILES for d in rows(f)]])  # fmt: skip
        suffix = " per-language" if args.per_language else ""
        if args.folds < 2:
            whole = {doc: with_model(train(self_label_(lex, archive), self_labelled=True))
                     for archive in archives for doc in archive}  # fmt: skip

            def one(title: str, text: str, lang: str) -> str:
                return str(whole[title, text](title, text, lang))

            predictors["self-label" + suffix] = one
        else:
            k, cap = args.folds, args.max_train or None
            held_out: dict[tuple[str, str], Any] = {}  # a text -> the model that never saw it
            for archive in archives:
                for fold in range(k):
                    seen = [a for i, a in enumerate(archive) if i % k != fold][:cap]
                    model = with_model(train(self_label_(lex, seen), self_labelled=True))
                    held_out.update({a: model for i, a in enumerate(archive) if i % k == fold})

            def crossfit(title: str, text: str, lang: str) -> str:
                return str(held_out[title, text](title, text, lang))

            predictors[f"self-label {k}-fold{suffix}"] = crossfit
    if args.model:
        from workers.topic_model import TopicModel

        predictors["model"] = with_model(TopicModel.load(args.model))
    for lang_name, file in (
        ("en", "masakhanews_eng_dev.jsonl"),
        ("fr", "masakhanews_fra_dev.jsonl"),
    ):
        docs = [d for d in rows(file) if d["label"] in MAPPING]
        gold = [MAPPING[d["label"]] for d in docs]
        for name, predict in predictors.items():
            pred, cold, warm, median = topics_of(predict, docs)
            acc = sum(g == p for g, p in zip(gold, pred, strict=True)) / len(gold)
            print(f"topics {lang_name} {name:8} n={len(docs)} accuracy {acc:.3f} "
                  f"macro-F1 {macro_f1(gold, pred):.3f} {warm:,.0f} articles/CPU-s "
                  f"(median {median:,.0f}, first pass {cold:,.0f})")  # fmt: skip
    if args.self_label:
        if args.max_train:
            print(f"each model trained on at most {args.max_train} archive texts")
        print(f"self-label recipe: threshold {threshold} {recipe}; model file "
              f"{sum(sizes) / len(sizes) / 1024:,.0f} KB on average over {len(sizes)}")
    sents = rows("sib200_langid.jsonl")
    started = time.process_time()
    guesses = [language.detect(s["text"]) for s in sents]
    speed = len(sents) / (time.process_time() - started)
    right = [g == s["lang"] for g, s in zip(guesses, sents, strict=True)]
    supported = set(language.identifier(()).nb_classes) | {"nb"}
    on_supported = [ok for ok, s in zip(right, sents, strict=True) if s["lang"] in supported]
    misses = Counter(s["lang"] for ok, s in zip(right, sents, strict=True) if not ok)
    print(f"language: accuracy {sum(right) / len(right):.3f} on {len(right)} sentences "
          f"({len(set(s['lang'] for s in sents))} languages); {sum(on_supported) / len(on_supported):.3f} "
          f"on those py3langid supports; {speed:,.0f} sentences/CPU-s; most missed: "
          f"{misses.most_common(4)}")  # fmt: skip


if __name__ == "__main__":
    main()
