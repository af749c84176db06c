"""Accepted answers as a spaCy `DocBin` (`.spacy`), the training data `spacy train` reads.

Written by `diff --agreements FILE.spacy` (the examples every model agrees on) and by
`disagree convert` (an annotated export of Prodigy, Label Studio or doccano).

Each text is tokenised by the blank pipeline of its language (`spacy.blank("en")` by default):
the DocBin carries tokens, and a blank tokeniser is what a `spacy train` config starts from.
Entities become `doc.ents`; categories become `doc.cats`, 1.0 for each accepted category and
0.0 for every other category offered (a task's options; for `convert`, every category of the
file), so that a multi-label `textcat` sees the negatives too.

Character offsets that do not fall on token boundaries (an entity "Apple" in "Apple's" is fine;
"US" in "USD" is not) are contracted to the tokens wholly inside the span (the label never
spreads to text the annotator left out) and counted as `adjusted`; a span inside one token has
no such tokens and is dropped, counted as `misaligned`. `doc.ents` cannot overlap: of
overlapping spans the longest is kept (spaCy's `filter_spans`), the others counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import DisagreeError, RecordError
from ..core.kinds import TaskKind
from ..core.labels import LabelMap
from ..io.output_files import check_output_path, write_atomic
from ..prodigy import ProdigyTask, parse_task

if TYPE_CHECKING:
    from spacy.tokens import Doc

SUFFIX = ".spacy"
DEFAULT_LANG = "en"


def is_docbin_path(path: str | Path | None) -> bool:
    """Whether an output path asks for a DocBin (it ends in `.spacy`)."""
    return path is not None and str(path) != "-" and Path(path).suffix == SUFFIX


@dataclass
class DocBinSummary:
    """What went into a DocBin, and what could not."""

    path: str
    docs: int = 0
    entities: int = 0
    adjusted: int = 0  # spans contracted to the tokens inside them
    misaligned: int = 0  # spans inside one token: dropped
    overlapping: int = 0  # spans overlapping a longer one: dropped
    unmapped: int = 0  # spans or categories the label map drops
    labels: Counter[str] = field(default_factory=Counter)  # entities or accepted categories
    misaligned_examples: list[str] = field(default_factory=list)  # the first few, in words

    def warnings(self) -> list[str]:
        said = []
        if self.adjusted:
            said.append(
                f"{self.adjusted:,} entities do not start or end on a token boundary of the "
                "blank tokeniser: contracted to the tokens inside them"
            )
        if self.misaligned:
            examples = "; ".join(self.misaligned_examples[:3])
            said.append(f"{self.misaligned:,} entities lie inside one token: left out ({examples})")
        if self.overlapping:
            said.append(
                f"{self.overlapping:,} entities overlap a longer one: left out (doc.ents "
                "cannot overlap)"
            )
        return said


class DocBinWriter:
    """Accepted Prodigy records into a DocBin, written to `path` in one rename on `commit`.

    The same calls as `jsonl.JsonlWriter` (`write_many`, `commit`, `discard`, `close`), so diff
    writes its agreements through either. A DocBin is one serialised object: it is held in
    memory (a few hundred bytes a text) and written whole.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        lang: str = DEFAULT_LANG,
        label_map: LabelMap | None = None,
        categories: Sequence[str] = (),
        overwrite: bool = False,
    ) -> None:
        self.path = check_output_path(path, overwrite=overwrite)
        self.overwrite = overwrite
        self.nlp = blank(lang)
        from spacy.tokens import DocBin

        self.docbin = DocBin(store_user_data=False)
        self.label_map = label_map or LabelMap.keep_all()
        self.categories = tuple(categories)
        self.summary = DocBinSummary(str(path))

    def write_many(self, records: Iterable[dict[str, Any]]) -> int:
        n = 0
        for record in records:
            self.add(parse_task(record))
            n += 1
        return n

    def add(self, task: ProdigyTask) -> None:
        """One accepted answer as one Doc. A text longer than spaCy's `max_length` is a
        RecordError (the caller names its file and line): spaCy refuses to make its Doc."""
        if len(task.text) > self.nlp.max_length:
            raise RecordError(
                f"{len(task.text):,} characters, more than spaCy's max_length "
                f"({self.nlp.max_length:,}); split the text into shorter ones",
                field="text",
            )
        doc = self.nlp.make_doc(task.text)
        if task.kind is TaskKind.CHOICE:
            self._set_cats(doc, task)
        else:
            self._set_ents(doc, task)
        self.docbin.add(doc)
        self.summary.docs += 1

    def _set_ents(self, doc: Doc, task: ProdigyTask) -> None:
        from spacy.util import filter_spans

        summary = self.summary
        spans = []
        for start, end, label in task.span_keys:
            target = self.label_map(label)
            if target is None:
                summary.unmapped += 1
                continue
            span = doc.char_span(start, end, label=target)
            if span is None:
                span = doc.char_span(start, end, label=target, alignment_mode="contract")
                if span is None or not len(span):
                    summary.misaligned += 1
                    if len(summary.misaligned_examples) < 5:
                        summary.misaligned_examples.append(
                            f"{task.text[start:end]!r} {target} in {task.text[:60]!r}"
                        )
                    continue
                summary.adjusted += 1
            spans.append(span)
        kept = filter_spans(spans)
        summary.overlapping += len(spans) - len(kept)
        doc.ents = kept
        summary.entities += len(kept)
        summary.labels.update(span.label_ for span in kept)

    def _set_cats(self, doc: Doc, task: ProdigyTask) -> None:
        accepted = set()
        for category in task.accept or ():
            target = self.label_map(category)
            if target is None:
                self.summary.unmapped += 1
            else:
                accepted.add(target)
        offered = {str(o["id"]) for o in task.record.get("options") or () if isinstance(o, dict)}
        mapped = {t for t in (self.label_map(c) for c in offered) if t is not None}
        every = sorted(set(self.categories) | mapped | accepted)
        doc.cats = {category: float(category in accepted) for category in every}
        self.summary.labels.update(accepted)

    def commit(self) -> None:
        write_atomic(self.path, self.docbin.to_bytes(), overwrite=True)

    def discard(self) -> None:
        """Nothing was written before `commit`: nothing to remove."""

    def close(self) -> None:
        """As `discard`: a DocBin is written whole on `commit` or not at all."""


def blank(lang: str) -> Any:
    """spaCy's blank pipeline of `lang` (its tokeniser), or a clear error."""
    import spacy

    try:
        return spacy.blank(lang)
    except (ImportError, KeyError, ValueError, OSError) as err:
        raise DisagreeError(
            f"--lang {lang!r}: spaCy has no such language; give a code such as en, de, fr, "
            f"or xx (multi-language) ({type(err).__name__})"
        ) from None
