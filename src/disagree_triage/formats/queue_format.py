"""What a queue format is, and the registry `diff --format NAME` looks formats up in.

diff scores and ranks; a format says what one queued example becomes in one annotation tool
(`records`), how its rank is filled in once every score is known (`with_rank`: the records are
spooled as bytes before the ranking, see diff.py), which file it goes to (`open`) and what
else the tool needs beside it (`companions`, e.g. Label Studio's labelling config).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import catalogue

from ..core.errors import DisagreeError, InputError
from ..io.jsonl import JsonlWriter
from ..prodigy.choice import option_ids

if TYPE_CHECKING:
    from ..triage.align import AlignedExample
    from ..triage.scoring import ScoredExample, Scoring

# name -> a QueueFormat subclass; other packages can add theirs through entry points
# ("disagree_triage_queue_formats"), as with the scorers.
queue_formats = catalogue.create("disagree_triage", "queue_formats", entry_points=True)


class QueueFormat:
    """How diff writes its ranked queue for one annotation tool; one instance per run."""

    name: ClassVar[str]
    suffix: ClassVar[str] = ".jsonl"  # of the files --split-by-model writes
    # Options naming extra files this format writes (e.g. "--labelstudio-config").
    companion_options: ClassVar[tuple[str, ...]] = ()

    # Whether every label must be one an annotation tool can take (`label_problem`): the
    # tools' formats say so; Prodigy's JSONL carries any string.
    tool_labels: ClassVar[bool] = False

    def __init__(self, scoring: Scoring, prefill: str) -> None:
        self.scoring = scoring
        self.prefill = prefill

    def check_labels(self, example: AlignedExample) -> None:
        """Refuse a label of `example` that the tool cannot take (see `label_problem`),
        naming the file, line and field it comes from; before anything is written."""
        if not self.tool_labels:
            return
        sources = self.scoring.sources or self.scoring.models
        for source, task in zip(sources, example.tasks, strict=True):
            if task is None:
                continue
            if task.accept is None:
                spans = task.record.get("spans") or []
                named = [(f"spans[{n}].label", span["label"]) for n, span in enumerate(spans)]
            else:
                named = [("accept", label) for label in task.accept]
                named += [("options", label) for label in option_ids(task.record)]
            for where, label in named:
                problem = label_problem(label)
                if problem is not None:
                    raise InputError(source, task.line, _refused(label, problem), field=where)

    def check_all_labels(self, labels: Sequence[str]) -> None:
        """`check_labels` for the labels of a whole run (those of agreements too), which a
        config lists; the files are named, as no one line is known."""
        for label in labels if self.tool_labels else ():
            problem = label_problem(label)
            if problem is not None:
                files = ", ".join(self.scoring.sources) or "the input files"
                raise DisagreeError(f"{files}: {_refused(label, problem)}")

    def records(self, scored: ScoredExample) -> list[dict[str, Any]]:
        """What one queued example adds to the output, with a rank placeholder."""
        raise NotImplementedError

    def with_rank(self, line: bytes, rank: int) -> bytes:
        """One serialised record of `records` with its rank filled in."""
        raise NotImplementedError

    def check(self, path: str | Path, *, overwrite: bool) -> None:
        """Whether `open` may write `path`, checked before any work (see JsonlWriter.check)."""
        JsonlWriter.check(path, overwrite=overwrite, resumable=False)

    def open(self, path: str | Path, *, overwrite: bool) -> JsonlWriter:
        """The writer of one queue file ('-': stdout), written whole or not at all."""
        return JsonlWriter(path, overwrite=overwrite, flush_each_write=False, resumable=False)

    def companions(
        self,
        output: str | Path | None,
        folder: str | Path | None,
        asked: Mapping[str, str | Path | None],
    ) -> dict[str, Path]:
        """The extra files to write (option -> path), given the queue's `output`, the
        --split-by-model `folder` and the paths the user `asked` for by option."""
        for option, path in asked.items():
            if path is not None and option not in self.companion_options:
                raise DisagreeError(f"{option} goes with another --format, not {self.name}")
        return {}

    def write_companions(
        self, paths: Mapping[str, Path], labels: Sequence[str], *, overwrite: bool
    ) -> None:
        """Write the `companions`, once every example is read; `labels`: every label any
        model used."""


@functools.lru_cache(maxsize=4096)  # a run has a few labels, each on many examples
def label_problem(label: str) -> str | None:
    """What in `label` no annotation tool's label can hold, or None: a control character
    (XML 1.0, Label Studio's config, cannot hold one even as a reference, and a database
    under doccano or Argilla may refuse a NUL), or a noncharacter such as U+FFFE.

    >>> label_problem("ORG\x1b[31m"), label_problem("Café & Co")
    ('a control character (U+001B)', None)
    """
    for char in label:
        code = ord(char)
        if code < 0x20 or 0x7F <= code <= 0x9F:
            return f"a control character (U+{code:04X})"
        if 0xD800 <= code <= 0xDFFF:
            return f"a lone surrogate (U+{code:04X})"
        if 0xFDD0 <= code <= 0xFDEF or code & 0xFFFE == 0xFFFE:
            return f"a noncharacter (U+{code:04X})"
    return None


def _refused(label: str, problem: str) -> str:
    return (
        f"the label {label!r} holds {problem}, which no annotation tool takes in a label "
        "(a Label Studio config cannot hold it at all); correct the label in the file"
    )


def get_queue_format(name: str) -> type[QueueFormat]:
    formats = queue_formats.get_all()
    if name not in formats:
        raise DisagreeError(f"--format {name!r}: choose one of {', '.join(sorted(formats))}")
    found: type[QueueFormat] = formats[name]
    return found


def rank_first(prefix: bytes, line: bytes, rank: int) -> bytes:
    """Fill in the rank of a record that starts with `prefix` + `0` (its rank placeholder,
    written first so that nothing in the record can be mistaken for it)."""
    assert line.startswith(prefix + b"0"), line[:80]
    return b"%s%d%s" % (prefix, rank, line[len(prefix) + 1 :])


def input_meta(example: AlignedExample) -> dict[str, Any]:
    """The `meta` of the input record (the first model's that has the text)."""
    return next(t for t in example.tasks if t is not None).meta


def flat_fields(details: Mapping[str, Any], meta: Mapping[str, Any]) -> dict[str, Any]:
    """A queued example's `Scoring.details` and its input's `meta` as one flat mapping of
    plain values, for tools that sort and filter on top-level fields (Label Studio's Data
    Manager, doccano's metadata): `score` is `disagreement_score`, the differences one string
    (a line each), `likely_wrong` and `llm_failed` the models named, nested mappings flattened
    with `_`
    (`model_errors_llm`). Details win over input fields of the same name.

        >>> flat_fields({"score": 0.5, "differences": ["a", "b"]}, {"src": {"id": 3}})
        {'disagreement_score': 0.5, 'differences': 'a\\nb', 'src_id': 3}
    """
    fields: dict[str, Any] = {}
    for key, value in details.items():
        if key == "score":
            fields["disagreement_score"] = value
        elif key == "differences":
            fields["differences"] = "\n".join(value)
        elif key == "likely_wrong":
            models = {model for item in value for model in item["likely_wrong"]}
            fields["likely_wrong"] = ", ".join(sorted(models))
        elif key == "llm_failed":
            fields["llm_failed"] = ", ".join(value)
        else:
            _flatten(fields, key, value)
    for key, value in meta.items():
        _flatten(fields, key, value, keep=True)
    return fields


def _flatten(fields: dict[str, Any], key: str, value: Any, *, keep: bool = False) -> None:
    if isinstance(value, Mapping):
        for sub, inner in value.items():
            _flatten(fields, f"{key}_{sub}", inner, keep=keep)
    elif not (keep and key in fields):
        fields[key] = value
