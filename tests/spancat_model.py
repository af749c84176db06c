"""A real spancat pipeline for the tests, the example and the benchmarks, trained once with
`spacy train` and kept in a cache folder keyed by what made it.

Data: wikigold (Balasuriya et al. 2009, CC-BY 4.0), read from ../shared/data/gold, never
copied into the repo. Its entities become the span group `doc.spans["sc"]` (spancat predicts
them as spans: overlapping candidates are allowed, the gold has none). The split is fixed here:
every 5th record (index % 5 == 4) is held out and never seen in training, for the triage
benchmark; index % 10 == 3 is the dev set `spacy train` picks its best model on; the rest trains.

The model lands in `$DISAGREE_MODELS_DIR/spancat-<hash>/` (default
`~/.cache/disagree/models/`), where the hash covers the gold file, the training config
(tests/data/spancat-train.cfg), the spaCy version and the split: a change to any of them trains a
new model, anything else reuses the one there (about 3 minutes on two busy cores to build).

    python tests/spancat_model.py          # build (or find) it; prints the model and held-out paths
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import spacy
from spacy.tokens import DocBin

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CONFIG = HERE / "data" / "spancat-train.cfg"
SHARED_DATA = Path(os.environ.get("DISAGREE_SHARED_DATA", ROOT.parent / "shared" / "data"))
GOLD = SHARED_DATA / "gold" / "wikigold.jsonl"
SPANS_KEY = "sc"
SPLIT = "wikigold: held out index % 5 == 4, dev index % 10 == 3; v1"  # part of the hash


@dataclass(frozen=True)
class SpancatModel:
    """A trained spancat pipeline and the data around it."""

    path: Path  # the pipeline directory (spacy.load it, or pass it to `disagree predict`)
    heldout: Path  # gold spans_manual records the model never saw (text, spans, answer)
    heldout_texts: Path  # the same texts, {"text", "meta"} only: predict's input
    train_records: int
    heldout_records: int


def models_dir() -> Path:
    named = os.environ.get("DISAGREE_MODELS_DIR")
    return Path(named) if named else Path.home() / ".cache" / "disagree" / "models"


def model_key() -> str:
    """The hash of what makes the model: gold, config, spaCy version, split."""
    digest = hashlib.sha256()
    for part in (
        GOLD.read_bytes(),
        CONFIG.read_bytes(),
        spacy.__version__.encode(),
        SPLIT.encode(),
    ):
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()[:16]


def part_of(index: int) -> str:
    if index % 5 == 4:
        return "heldout"
    return "dev" if index % 10 == 3 else "train"


def spancat_model(root: Path | None = None) -> SpancatModel:
    """The trained model, built first when the cache has none for these inputs. Raises
    FileNotFoundError when the shared gold is absent."""
    if not GOLD.exists():
        raise FileNotFoundError(f"{GOLD} is absent (it lies in ../shared/data beside the repo)")
    folder = (root or models_dir()) / f"spancat-{model_key()}"
    folder.parent.mkdir(parents=True, exist_ok=True)
    with _locked(folder.parent / f"{folder.name}.lock"):
        if not (folder / "meta.json").exists():
            _build(folder)
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    return SpancatModel(
        folder / "model",
        folder / "heldout.jsonl",
        folder / "heldout-texts.jsonl",
        meta["train_records"],
        meta["heldout_records"],
    )


@contextmanager
def _locked(lock: Path) -> Iterator[None]:
    # pytest-xdist workers ask for the model at once: one trains, the others wait for it.
    with lock.open("wb") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _gold() -> list[dict[str, Any]]:
    return [json.loads(line) for line in GOLD.read_text(encoding="utf-8").splitlines() if line]


def _build(folder: Path) -> None:
    records = _gold()
    nlp = spacy.blank("en")
    bins = {"train": DocBin(), "dev": DocBin()}
    heldout = []
    for index, record in enumerate(records):
        part = part_of(index)
        if part == "heldout":
            heldout.append(record)
            continue
        doc = nlp.make_doc(record["text"])
        spans = [
            doc.char_span(s["start"], s["end"], label=s["label"], alignment_mode="expand")
            for s in record.get("spans") or []
        ]
        doc.spans[SPANS_KEY] = [span for span in spans if span is not None]
        bins[part].add(doc)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=f".{folder.name}-") as tmp:
        work = Path(tmp)
        for part, docbin in bins.items():
            docbin.to_disk(work / f"{part}.spacy")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "spacy",
                "train",
                str(CONFIG),
                "--output",
                str(work / "out"),
                "--paths.train",
                str(work / "train.spacy"),
                "--paths.dev",
                str(work / "dev.spacy"),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        built = work / "built"
        built.mkdir()
        shutil.move(str(work / "out" / "model-best"), str(built / "model"))
        _write_heldout(built, heldout)
        (built / "meta.json").write_text(
            json.dumps(
                {
                    "train_records": len(bins["train"]),
                    "dev_records": len(bins["dev"]),
                    "heldout_records": len(heldout),
                    "gold": GOLD.name,
                    "split": SPLIT,
                }
            ),
            encoding="utf-8",
        )
        if folder.exists():
            shutil.rmtree(folder)
        built.rename(folder)


def _write_heldout(folder: Path, records: list[dict[str, Any]]) -> None:
    """The held-out gold as spans_manual records, and its texts alone (predict's input)."""
    with (
        (folder / "heldout.jsonl").open("w", encoding="utf-8") as gold,
        (folder / "heldout-texts.jsonl").open("w", encoding="utf-8") as texts,
    ):
        for record in records:
            gold.write(json.dumps({**record, "_view_id": "spans_manual"}) + "\n")
            texts.write(json.dumps({"text": record["text"], "meta": record.get("meta", {})}) + "\n")


if __name__ == "__main__":
    model = spancat_model()
    print(f"model:   {model.path}\nheldout: {model.heldout} ({model.heldout_records} records)")
