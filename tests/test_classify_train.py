"""`classify train` on labelled and on self-labelled archives; `classify --input` uses the model."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tests.conftest import SHARED, cli

MAPPING = {"business": "medtop:04000000", "entertainment": "medtop:01000000",
           "health": "medtop:07000000", "politics": "medtop:11000000",
           "sports": "medtop:15000000", "technology": "medtop:13000000"}  # fmt: skip


def masakhane(*langs: str) -> list[dict[str, str]]:
    out = []
    for lang in langs or ("eng",):
        path = SHARED / "classification" / f"masakhanews_{lang}_dev.jsonl"
        out += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return out


@pytest.mark.corpus
def test_train_on_labels_then_classify_with_the_model(tmp_path: Path) -> None:
    docs = [d for d in masakhane() if d["label"] in MAPPING]
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps({"title": d["title"], "text": d["text"],
                                          "label": MAPPING[d["label"]]}) + "\n" for d in docs)
                      + "not json\n")  # fmt: skip
    model = tmp_path / "model.npz"
    out = cli("classify", "train", str(labels), "--out", str(model))
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["documents"] == len(docs) and summary["skipped"] == 1
    assert "line" in out.stderr and model.stat().st_size < 5_000_000

    inputs = tmp_path / "in.jsonl"
    inputs.write_text("".join(json.dumps({"id": i, "title": d["title"], "text": d["text"]}) + "\n"
                              for i, d in enumerate(docs)))  # fmt: skip
    got = cli("classify", "--input", str(inputs), env={"NEWS_INGEST_CLASSIFY_MODEL": str(model)})
    assert got.returncode == 0, got.stderr
    rows = [json.loads(line) for line in got.stdout.splitlines()]
    right = sum(bool(r["topics"]) and r["topics"][0]["code"] == MAPPING[d["label"]]
                for r, d in zip(rows, docs, strict=True))  # fmt: skip
    assert right / len(docs) > 0.9  # in-sample: the model learnt its labels
    assert any(t.get("source") == "model" for r in rows for t in r["topics"])


@pytest.mark.corpus
def test_self_label_trains_from_an_unlabelled_archive(tmp_path: Path) -> None:
    both = masakhane("eng", "fra")  # English and French, as in bench/classify.py --self-label
    archive = tmp_path / "archive.jsonl"
    archive.write_text("".join(json.dumps({"title": d["title"], "text": d["text"]}) + "\n"
                               for d in both))  # fmt: skip
    model = tmp_path / "m.npz"
    out = cli("classify", "train", "--self-label", str(archive), "--out", str(model))
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert 100 < summary["documents"] < len(both)  # only the lexicon's confident cases
    assert all(code.startswith("medtop:") for code in summary["labels"])

    # the self-labelled model is blended with the lexicon, and the blend does better than it
    docs = [d for d in both if d["label"] in MAPPING]
    inputs = tmp_path / "in.jsonl"
    inputs.write_text("".join(json.dumps({"id": i, "title": d["title"], "text": d["text"]}) + "\n"
                              for i, d in enumerate(docs)))  # fmt: skip
    accuracy = {}
    for name, env in (("lexicon", {}), ("blend", {"NEWS_INGEST_CLASSIFY_MODEL": str(model)})):
        got = cli("classify", "--input", str(inputs), env=env)
        assert got.returncode == 0, got.stderr
        rows = [json.loads(line) for line in got.stdout.splitlines()]
        accuracy[name] = sum(bool(r["topics"]) and r["topics"][0]["code"] == MAPPING[d["label"]]
                             for r, d in zip(rows, docs, strict=True)) / len(docs)  # fmt: skip
        if name == "blend":
            assert all(t["source"] == "model+lexicon" for r in rows for t in r["topics"])
            assert all(sum(t["score"] for t in r["topics"]) <= 1.0 + 1e-6 for r in rows)
    assert accuracy["blend"] > accuracy["lexicon"]


_OWN_VOCAB = {  # our own small labelled set: three topics, words only one of them uses
    "medtop:15000000": "striker goal league match coach season stadium referee keeper cup",
    "medtop:04000000": "shares profits bank investors market inflation company earnings trade",
    "medtop:07000000": "hospital patients doctors vaccine disease nurses clinic treatment virus",
}
_COMMON = "the a said on in and of to for with after week city officials"


def _own_docs(per_label: int, seed: int) -> list[dict[str, str]]:
    rnd = random.Random(seed)
    docs = []
    for label, vocab in _OWN_VOCAB.items():
        words, common = vocab.split(), _COMMON.split()
        for _ in range(per_label):
            text = " ".join(rnd.choice(words if rnd.random() < 0.4 else common) for _ in range(60))
            docs.append({"title": " ".join(rnd.sample(words, 3)), "text": text, "label": label})
    return docs


def test_train_on_labels_then_classify_with_the_model_own_fixture(tmp_path: Path) -> None:
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps(d) + "\n" for d in _own_docs(30, seed=1)))
    model = tmp_path / "model.npz"
    out = cli("classify", "train", str(labels), "--out", str(model))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["documents"] == 90
    fresh = _own_docs(5, seed=2)
    inputs = tmp_path / "in.jsonl"
    inputs.write_text("".join(json.dumps({"id": i, "title": d["title"], "text": d["text"]}) + "\n"
                              for i, d in enumerate(fresh)))  # fmt: skip
    got = cli("classify", "--input", str(inputs), env={"NEWS_INGEST_CLASSIFY_MODEL": str(model)})
    assert got.returncode == 0, got.stderr
    rows = [json.loads(line) for line in got.stdout.splitlines()]
    right = sum(bool(r["topics"]) and r["topics"][0]["code"] == d["label"]
                for r, d in zip(rows, fresh, strict=True))  # fmt: skip
    assert right >= 13, rows  # of 15
    assert any(t.get("source") in ("model", "model+lexicon") for r in rows for t in r["topics"])


def test_training_needs_labels(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"title": "t", "text": "some text"}) + "\n")
    out = cli("classify", "train", str(bad), "--out", str(tmp_path / "m.npz"))
    assert out.returncode != 0 and "at least two labels" in out.stderr


def test_classify_works_from_any_directory(tmp_path: Path) -> None:
    # the shipped taxonomy and settings are found beside the code, not in the working directory
    story = {"id": 1, "title": "Striker scores twice as champions win the league",
             "text": "The striker scored twice in the second half."}  # fmt: skip
    got = cli("classify", "--input", "-", input=json.dumps(story) + "\n", cwd=tmp_path)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["topics"][0]["code"] == "medtop:15000000"


def test_classify_takes_what_a_worker_knows_and_skips_bad_lines() -> None:
    story = "The council met on Tuesday and the mayor spoke about the new plan."
    lines = [
        json.dumps({"id": "plain", "title": "Council meeting", "text": story}),
        "not json",
        json.dumps({"id": "prior", "title": "Council meeting", "text": story,
                    "topic": "medtop:15000000", "tags": "Football"}),  # one tag as a string
        json.dumps(["a", "list"]),
        json.dumps({"id": "declared", "title": "", "text": "Kurz und bündig.",
                    "language": "de"}),
        json.dumps({"id": "odd types", "title": None, "text": 42, "tags": {"not": "a list"}}),
    ]  # fmt: skip
    got = cli("classify", input="\n".join(lines) + "\n")
    assert got.returncode == 0, got.stderr
    rows = {r["id"]: r for r in map(json.loads, got.stdout.splitlines())}
    assert list(rows) == ["plain", "prior", "declared", "odd types"]
    assert "error: line 2:" in got.stderr and "error: line 4:" in got.stderr
    assert "2 line(s) skipped" in got.stderr

    def codes(row: dict[str, object]) -> list[str]:
        return [t["code"] for t in row["topics"]]  # type: ignore[attr-defined]

    # the feed's topic and its tags are priors: sport gains on a story about a council
    assert "medtop:15000000" not in codes(rows["plain"])
    assert codes(rows["prior"])[0] == "medtop:15000000"
    assert rows["declared"]["language"] == "de"
    assert rows["odd types"]["topics"] == []


@pytest.mark.corpus  # a model of real size needs the labelled corpus
def test_scoring_needs_numpy_only_and_an_old_model_file_is_refused(tmp_path: Path) -> None:
    import subprocess
    import sys

    import numpy as np

    from tests.conftest import ROOT
    from workers import topic_model

    docs = [(d["title"], d["text"], MAPPING[d["label"]]) for d in masakhane()
            if d["label"] in MAPPING][:200]  # fmt: skip
    path = tmp_path / "m.npz"
    topic_model.train(docs).save(path)
    assert 50_000 < path.stat().st_size < 2_000_000  # float32, only the words seen in training
    # the worker's whole path too (pipeline, jobs, the learnt models): scikit-learn is imported
    # by a refit only
    check = ("import sys; from workers import classify, jobs, learn, pipeline, topic_model as t; "
             f"m = t.TopicModel.load({str(path)!r}); "
             "lex = classify.load_lexicon('ingest/defaults/taxonomy.yaml'); "
             "print(t.assign(m, lex, 'Central bank raises rates', 'Inflation and the economy.')"
             "[0]['code']); assert 'sklearn' not in sys.modules and 'scipy' not in sys.modules")
    run = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "medtop:04000000"

    old = tmp_path / "old.npz"  # the hashed format of earlier versions
    np.savez_compressed(old, classes=np.array(["a", "b"]), coef=np.zeros((2, 8), np.float32),
                        intercept=np.zeros(2, np.float32), n_features=np.array([8]),
                        self_labelled=np.array([0]))  # fmt: skip
    got = cli("classify", input='{"id": 1, "title": "t", "text": "x"}\n',
              env={"NEWS_INGEST_CLASSIFY_MODEL": str(old)})
    assert got.returncode != 0 and "train it again" in got.stderr
    assert "Traceback" not in got.stderr and len(got.stderr.strip().splitlines()) == 1


def test_a_model_file_is_replaced_atomically(tmp_path: Path) -> None:
    # a reader (a worker starting, `classify --input`) sees the old file or the new one: the
    # bytes go to a temporary file beside it, renamed over it once complete
    from workers import topic_model

    docs = [("Goal for the striker", "The league match", "medtop:15000000"),
            ("Central bank rates", "Inflation and shares", "medtop:04000000")] * 3  # fmt: skip
    path = tmp_path / "m.npz"
    topic_model.train(docs, min_df=1).save(path)
    before = path.read_bytes()
    with pytest.raises(TypeError):  # the write fails half-way: after the temporary file exists
        topic_model.write_atomically(path, "not bytes")  # type: ignore[arg-type]
    assert path.read_bytes() == before and list(tmp_path.iterdir()) == [path]
    flipped = [(t, x, "medtop:07000000" if c == "medtop:04000000" else c) for t, x, c in docs]
    topic_model.train(flipped, min_df=1).save(path)
    assert topic_model.TopicModel.load(path).classes == ["medtop:07000000", "medtop:15000000"]
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind
