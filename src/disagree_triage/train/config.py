"""The `spacy train` config that `disagree train` generates, runs, and leaves beside the output.

Every component is `source`d from the base pipeline, so the new pipeline is the old one with one
component updated: the entity recognizer (or the text classifier) trains, every other component
(tok2vec, tagger, parser, lemmatizer ...) is in `frozen_components` and comes out unchanged, and
the tokeniser and vocabulary (vectors, lexeme norms) are copied from the base before anything
else (`spacy.copy_from_base_model.v1`), so the new pipeline tokenises and looks words up exactly
as the old one did. en_core_web_* give their `ner` a tok2vec of its own: freezing the shared one
costs the recognizer nothing.

A span categoriser the base lacks is added at the end of the pipeline (`added`): spaCy's own
`spancat` defaults (a tok2vec of its own, so the frozen components are not touched), writing to
`doc.spans[KEY]`, with an n-gram suggester of every length from 1 to the longest annotated span
(`spancat_component`); it is the only component that is initialised, from the training Docs,
which also give its labels.

The written config.cfg is a plain spaCy config: `spacy train OUTPUT/config.cfg --output DIR`
reruns the same training from OUTPUT/train.spacy and OUTPUT/dev.spacy, and any setting can be
edited or overridden (`--training.max_epochs 30`), as with any spaCy project.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from thinc.api import Config


@dataclass(frozen=True)
class TrainingSettings:
    """What the training loop is told (docs/train.md): spaCy's fine-tuning defaults, with an
    early stop; not tuned on the benchmark's data."""

    seed: int = 0
    max_epochs: int = 15
    patience: int = 4  # evaluations without a better dev score before stopping
    evals_per_epoch: int = 1
    learn_rate: float = 0.001
    dropout: float = 0.1


# The training and dev Docs, as `spacy train` reads them.
_CORPORA = {
    split: {
        "@readers": "spacy.Corpus.v1",
        "path": f"${{paths.{split}}}",
        "gold_preproc": False,
        "max_length": 0,
        "limit": 0,
        "augmenter": None,
    }
    for split in ("train", "dev")
}
# Tokeniser and vocabulary (vectors, lexeme norms) from the base, before anything else.
_INITIALIZE = {
    "vectors": None,  # with the vocabulary, from the base (before_init)
    "init_tok2vec": None,
    "vocab_data": None,
    "lookups": None,  # the base's lexeme norms come with its vocabulary
    "before_init": {
        "@callbacks": "spacy.copy_from_base_model.v1",
        "tokenizer": "${paths.base}",
        "vocab": "${paths.base}",
    },
    "after_init": None,
    "components": {},
    "tokenizer": {},
}


def training_config(
    base: str,
    base_config: Config,
    component: str,
    *,
    score: str,
    train_path: str | Path,
    dev_path: str | Path,
    steps_per_epoch: int,
    settings: TrainingSettings = TrainingSettings(),
    added: dict[str, Any] | None = None,
    listened_to: Sequence[str] = (),
) -> Config:
    """The config that trains `component` of the pipeline `base` (a package name or an
    absolute path) and keeps the rest. `score` is the dev score that picks model-best
    (`ents_f`, `cats_score`, `spans_sc_f`); `steps_per_epoch` sets how often the dev set is
    scored. `added`: the settings of `component` where the base lacks it (it is appended);
    `listened_to`: the frozen tok2vec components it listens to."""
    from thinc.api import Config

    pipeline = list(base_config["nlp"]["pipeline"])
    if added is not None:
        pipeline.append(component)
    eval_every = max(1, steps_per_epoch // max(1, settings.evals_per_epoch))
    training = dict(base_config["training"])
    training.update(
        seed="${system.seed}",
        gpu_allocator="${system.gpu_allocator}",
        dropout=settings.dropout,
        accumulate_gradient=1,
        patience=settings.patience * eval_every,
        max_epochs=settings.max_epochs,
        max_steps=0,
        eval_frequency=eval_every,
        frozen_components=[name for name in pipeline if name != component],
        # A frozen tok2vec that the trained component listens to runs in training to feed it.
        annotating_components=list(listened_to),
        before_to_disk=None,
        before_update=None,
        train_corpus="corpora.train",
        dev_corpus="corpora.dev",
        logger={"@loggers": "spacy.ConsoleLogger.v1", "progress_bar": False},
        optimizer={
            **dict(base_config["training"]["optimizer"]),
            "learn_rate": settings.learn_rate,
        },
        # Only the trained component's score picks model-best; the frozen ones' are reported.
        score_weights={
            **dict.fromkeys(base_config["training"].get("score_weights", {})),
            score: 1.0,
        },
    )
    data: dict[str, Any] = {
        "paths": {"train": str(train_path), "dev": str(dev_path), "base": base},
        "system": {"seed": settings.seed, "gpu_allocator": None},
        "nlp": {**dict(base_config["nlp"]), "pipeline": pipeline},
        "components": {
            name: dict(added)
            if added is not None and name == component
            else {"source": "${paths.base}"}
            for name in pipeline
        },
        "corpora": deepcopy(_CORPORA),  # a Config may be edited: never the shared one
        "training": training,
        "pretraining": {},
        "initialize": deepcopy(_INITIALIZE),
    }
    return Config(data)


MAX_NGRAM = 12  # the longest span an added spancat's suggester offers, in tokens


def spancat_component(
    spans_key: str, lengths: Iterable[int], listen: tuple[str, int] | None = None
) -> tuple[dict[str, Any], int]:
    """An added spancat's settings: spaCy's defaults, `spans_key`, and n-grams of every length
    up to the longest annotated span (at most MAX_NGRAM); and how many annotated spans are
    longer than that (the suggester never offers them). `listen`: the base's tok2vec (name,
    width) to listen to, as en_core_web_*'s tagger and parser do; its trained features make a
    few hundred annotated texts enough, where a tok2vec of its own starts from nothing.

    >>> spancat_component("sc", [1, 3, 2])[0]["suggester"]
    {'@misc': 'spacy.ngram_suggester.v1', 'sizes': [1, 2, 3]}
    """
    found = list(lengths)
    longest = min(max(found, default=1), MAX_NGRAM)
    settings = {
        "factory": "spancat",
        "spans_key": spans_key,
        "suggester": {"@misc": "spacy.ngram_suggester.v1", "sizes": list(range(1, longest + 1))},
    }
    if listen is not None:
        upstream, width = listen
        settings["model"] = {
            "@architectures": "spacy.SpanCategorizer.v1",
            "reducer": {"@layers": "spacy.mean_max_reducer.v1", "hidden_size": 128},
            "scorer": {"@layers": "spacy.LinearLogistic.v1"},
            "tok2vec": {
                "@architectures": "spacy.Tok2VecListener.v1",
                "width": width,
                "upstream": upstream,
            },  # fmt: skip
        }
    return settings, sum(n > MAX_NGRAM for n in found)


def config_source(base: str | Path) -> str:
    """How the config names the base: a package by its name, a folder by its absolute path
    (the config is run from elsewhere)."""
    path = Path(base)
    return str(path.resolve()) if path.exists() else str(base)
