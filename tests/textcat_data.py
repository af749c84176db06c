"""A real text classifier for the tests, trained in the test set-up on real texts.

Labelled data: texts of two real corpora in ../shared/data, labelled by where they come from —
COOKING for r/Cooking comments, NEWS for Wikinews sentences. The training and test texts never
overlap (training from the start of each file, test texts from the end). The classifier is a
spaCy bag-of-words `textcat` (or `textcat_multilabel`), trained for a few epochs: seconds on a
CPU, and deliberately not perfect, so its scores carry real uncertainty.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import spacy
from spacy.language import Language
from spacy.training import Example
from spacy.util import fix_random_seed, minibatch

from conftest import shared_file

LABELS = ("COOKING", "NEWS")
SOURCES = {"COOKING": "corpora/reddit_cooking.jsonl", "NEWS": "corpora/wikinews_sentences.jsonl"}


def _texts(label: str) -> list[str]:
    texts = []
    for line in shared_file(SOURCES[label]).read_text(encoding="utf-8").splitlines():
        text = json.loads(line)["text"]
        if 40 <= len(text) <= 300:  # short enough for a small LLM's prompt
            texts.append(text)
    return texts


def labelled(n_train: int, n_test: int, seed: int = 0) -> tuple[list, list]:
    """(train, test): lists of (text, label), balanced, shuffled with `seed`."""
    train, test = [], []
    for label in LABELS:
        texts = _texts(label)
        train += [(t, label) for t in texts[:n_train]]
        test += [(t, label) for t in texts[len(texts) - n_test :]]
    rng = random.Random(seed)
    rng.shuffle(train)
    rng.shuffle(test)
    return train, test


def train_textcat(
    train: list[tuple[str, str]], *, exclusive: bool = True, epochs: int = 3, seed: int = 0
) -> Language:
    fix_random_seed(seed)
    nlp = spacy.blank("en")
    factory = "textcat" if exclusive else "textcat_multilabel"
    architecture = {
        "@architectures": "spacy.TextCatBOW.v3",
        "exclusive_classes": exclusive,
        "ngram_size": 1,
        "no_output_layer": False,
    }
    textcat = nlp.add_pipe(factory, config={"model": architecture})
    for label in LABELS:
        textcat.add_label(label)
    examples = [
        Example.from_dict(nlp.make_doc(text), {"cats": {c: float(c == label) for c in LABELS}})
        for text, label in train
    ]
    optimizer = nlp.initialize(lambda: examples)
    rng = random.Random(seed)
    for _ in range(epochs):
        rng.shuffle(examples)
        for batch in minibatch(examples, size=16):
            nlp.update(batch, sgd=optimizer, drop=0.2)
    return nlp


def write_corpus(path: Path, test: list[tuple[str, str]]) -> Path:
    """The unlabelled corpus (label kept in meta for reading the outputs, never used by models)."""
    with path.open("w", encoding="utf-8") as f:
        for text, label in test:
            f.write(json.dumps({"text": text, "meta": {"source": label}}) + "\n")
    return path


def write_gold(path: Path, test: list[tuple[str, str]]) -> Path:
    """Gold in Prodigy's textcat.manual export shape: options, accept, answer."""
    with path.open("w", encoding="utf-8") as f:
        for text, label in test:
            record = {
                "text": text,
                "options": [{"id": c, "text": c} for c in LABELS],
                "accept": [label],
                "answer": "accept",
                "_view_id": "choice",
            }
            f.write(json.dumps(record) + "\n")
    return path
