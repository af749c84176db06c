"""How a corpus is predicted: one `PredictOptions`, checked once, that `predict_file`, every
Dask worker (`dask_driver`) and both passes of a batch job (`batch`) read.

    >>> options = PredictOptions(ner="ORG:ORGANISATION,PERSON", annotator="spacy-md")
    >>> options.label_map(TaskKind.NER)("ORG")
    'ORGANISATION'
    >>> PredictOptions(spans_key="skills").kind_asked
    <TaskKind.SPANS: 'spans'>
    >>> PredictOptions(resume=True, overwrite=True)
    Traceback (most recent call last):
    ...
    disagree_triage.core.errors.OptionError: --resume and --overwrite exclude each other

Each runner refuses, by name, an option it cannot honour (`--n-process` on Dask workers,
`--resume` for a batch job): no option is dropped without a word.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import DisagreeError, OptionError
from ..core.kinds import TaskKind
from ..core.labels import LabelMap

if TYPE_CHECKING:
    from spacy.language import Language

DEFAULT_BEAM_WIDTH = 16


@dataclass(frozen=True)
class PredictOptions:
    """Every option of `disagree predict` that decides what is written (see `predict_file`).
    `ner` / `textcat` / `spans`: label maps in --ner's syntax (an empty `textcat` or `spans`
    keeps every label), at most one of them; `spans_key`: the span group `spans` reads
    (default: the one its span component writes);
    `overrides`, `labels`, `examples`: how a spacy-llm config is assembled; `limit`: the first
    N valid texts only (a trial run)."""

    ner: str | LabelMap | None = None
    textcat: str | LabelMap | None = None
    spans: str | LabelMap | None = None
    spans_key: str | None = None
    threshold: float = 0.5
    annotator: str | None = None
    batch_size: int = 64
    n_process: int = 1
    resume: bool = False
    overwrite: bool = False
    skip_invalid: bool = False
    save_io: bool = False
    scores: bool = False
    beam_width: int = DEFAULT_BEAM_WIDTH
    overrides: dict[str, Any] | None = None
    labels: str | tuple[str, ...] | None = None
    examples: str | Path | None = None
    limit: int | None = None
    # The parsed label maps (a malformed map fails here, before a model is loaded).
    _maps: dict[TaskKind, LabelMap] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        given = [
            option
            for option, value in (("--ner", self.ner), ("--textcat", self.textcat),
                                  ("--spans", self.spans))
            if value is not None
        ]  # fmt: skip
        if len(given) > 1:
            raise DisagreeError(
                f"{' and '.join(given)} exclude each other: one kind of task per run"
            )
        if self.spans_key is not None and (self.ner is not None or self.textcat is not None):
            raise DisagreeError(f"--spans-key goes with span groups, not with {given[0]}")
        if self.spans_key is not None and not self.spans_key.strip():
            raise DisagreeError("--spans-key: name a span group, e.g. sc")
        maps = {
            TaskKind.NER: _label_map(self.ner, "--ner"),
            TaskKind.CHOICE: _label_map(self.textcat or None, "--textcat"),
            TaskKind.SPANS: _label_map(self.spans or None, "--spans"),
        }
        object.__setattr__(self, "_maps", maps)
        if self.labels is not None and not isinstance(self.labels, str):
            object.__setattr__(self, "labels", tuple(self.labels))
        if self.resume and self.overwrite:
            raise OptionError("--resume and --overwrite exclude each other")
        if not 0.0 <= self.threshold <= 1.0:
            raise DisagreeError(f"--threshold {self.threshold}: must be between 0 and 1")
        for option, value in (
            ("--beam-width", self.beam_width),
            ("--batch-size", self.batch_size),
            ("--n-process", self.n_process),
            ("--limit", self.limit),
        ):
            if value is not None and value < 1:
                raise DisagreeError(f"{option} {value}: must be at least 1")

    @classmethod
    def of(cls, options: PredictOptions | None, settings: Mapping[str, Any]) -> PredictOptions:
        """`options` with `settings` (PredictOptions' fields, by name) changed, checked again."""
        return replace(options or cls(), **settings)

    def label_map(self, kind: TaskKind) -> LabelMap:
        """The map of the kind of task the run predicts."""
        return self._maps[kind]

    @property
    def kind_asked(self) -> TaskKind | None:
        """The kind of task an option names (--ner, --textcat, --spans or --spans-key); None
        where the pipeline decides."""
        if self.textcat is not None:
            return TaskKind.CHOICE
        if self.spans is not None or self.spans_key is not None:
            return TaskKind.SPANS
        return TaskKind.NER if self.ner is not None else None

    def check_model(self, model: str | Path | Language) -> None:
        """Refuse what assembles a config for a model that is not one (`check_config_options`)."""
        check_config_options(
            model, overrides=self.overrides, labels=self.labels, examples=self.examples
        )

    def loaded(self) -> PredictOptions:
        """These options for the pipeline they loaded: what assembling it took is dropped."""
        return replace(self, overrides=None, labels=None, examples=None)

    def key(self) -> str:
        """The options as text: equal keys predict the same (a worker keeps its pipeline)."""
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        return json.dumps(values, sort_keys=True, default=str)


def _label_map(spec: str | LabelMap | None, option: str) -> LabelMap:
    return spec if isinstance(spec, LabelMap) else LabelMap.parse(spec, option=option)


def check_config_options(
    model: str | Path | Language,
    *,
    overrides: dict[str, Any] | None = None,
    labels: str | Sequence[str] | None = None,
    examples: str | Path | None = None,
) -> None:
    """Refuse config overrides, labels and examples for a model that is not a `.cfg`: they
    change how a config is assembled, and a saved or loaded pipeline is assembled already."""
    loaded = not isinstance(model, (str, Path))  # a Language, assembled already
    if not loaded and Path(str(model)).suffix == ".cfg":
        return
    given = {
        option: example
        for option, value, example in (
            ("--labels", labels, "--labels A,B"),
            ("--examples", examples, "--examples FILE"),
            ("config overrides", overrides or None, "--section.key value"),
        )
        if value is not None
    }
    if not given:
        return
    name = str(model) if isinstance(model, (str, Path)) else model.meta.get("name", "?")
    raise DisagreeError(
        f"{' and '.join(given)}: only for a spacy-llm config (.cfg), and {name!r} is a pipeline "
        f"already assembled; pass its config instead, or assemble it again with them "
        f"(disagree assemble CONFIG OUTPUT_DIR {' '.join(given.values())})"
    )
