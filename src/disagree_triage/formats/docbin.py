"""Accepted answers as a spaCy `DocBin` (`.spacy`), the training data `spacy train` reads.

Written by `diff --agreements FILE.spacy` (the examples every model agrees on) and by
`disagree convert` (an annotated export of Prodigy, Label Studio, doccano or Argilla); read
back as gold (`docbin_records`: evaluate, `diff --calibrate`, `convert`, `train`).

Each text is tokenised by the blank pipeline of its language (`spacy.blank("en")` by default):
the DocBin carries tokens, and a blank tokeniser is what a `spacy train` config starts from.
Entities become `doc.ents`; spans (`spans_manual` tasks) the span group `doc.spans[KEY]`
(`--spans-key`, "sc" by default, what spaCy's `spancat` trains on), overlaps and all;
categories become `doc.cats`, 1.0 for each accepted category and
0.0 for every other category offered (a task's options; for `convert`, every category of the
file), so that a multi-label `textcat` sees the negatives too.

Character offsets that do not fall on token boundaries (an entity "Apple" in "Apple's" is fine;
"US" in "USD" is not) are contracted to the tokens wholly inside the span (the label never
spreads to text the annotator left out) and counted as `adjusted`; a span inside one token has
no such tokens and is dropped, counted as `misaligned`. `doc.ents` cannot overlap: of
overlapping entities the longest is kept (spaCy's `filter_spans`), the others counted; a span
group keeps every span.

Read back, a DocBin says its kind itself: `doc.ents` are entities, a span group spans (the
group `sc`, else the only one), `doc.cats` categories (each at 0.5 or more accepted). A DocBin
with both entities and a span group is refused unless `--gold-format docbin:ner` or
`docbin:spans` says which to read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import DisagreeError, InputError, RecordError
from ..core.kinds import TaskKind
from ..core.labels import LabelMap
from ..io.jsonl import check_input_file
from ..io.output_files import check_output_path, write_atomic
from ..prodigy import ProdigyTask, parse_task
from .accepted import accepted_record

if TYPE_CHECKING:
    from spacy.tokens import Doc, Span

SUFFIX = ".spacy"
DEFAULT_LANG = "en"
DEFAULT_SPANS_KEY = "sc"  # spaCy's spancat reads doc.spans["sc"] unless told another key


def is_docbin_path(path: str | Path | None) -> bool:
    """Whether an output path asks for a DocBin (it ends in `.spacy`)."""
    return path is not None and str(path) != "-" and Path(path).suffix == SUFFIX


@dataclass(kw_only=True)
class SpanAlignment:
    """Character spans put on a tokeniser's tokens, and what that cost: one rule for every
    Doc disagree makes from annotations (a DocBin here, train's training Docs). Keyword-only, so
    a dataclass built on it keeps its own positional fields first."""

    adjusted: int = 0  # spans contracted to the tokens inside them
    misaligned: int = 0  # spans inside one token: dropped
    misaligned_examples: list[str] = field(default_factory=list)  # the first few, in words

    def char_span(self, doc: Doc, start: int, end: int, label: str, where: str) -> Span | None:
        """The Span of characters [start, end) on `doc`'s tokens, contracted to the tokens
        wholly inside it (the label never spreads to text the annotator left out); None,
        counted, when it lies inside one token. `where` names the text in an example."""
        span = doc.char_span(start, end, label=label)
        if span is not None:
            return span
        span = doc.char_span(start, end, label=label, alignment_mode="contract")
        if span is None or not len(span):
            self.misaligned += 1
            if len(self.misaligned_examples) < 5:
                self.misaligned_examples.append(f"{doc.text[start:end]!r} {label} in {where}")
            return None
        self.adjusted += 1
        return span

    def alignment_warnings(self, unit: str, tokeniser: str) -> list[str]:
        """What contracting and dropping did, in words: `unit` names the spans ("entities",
        "annotated spans"), `tokeniser` the tokens they were put on."""
        said = []
        if self.adjusted:
            said.append(
                f"{self.adjusted:,} {unit} do not start or end on a token boundary of "
                f"{tokeniser}: contracted to the tokens inside them"
            )
        if self.misaligned:
            examples = "; ".join(self.misaligned_examples[:3])
            said.append(f"{self.misaligned:,} {unit} lie inside one token: left out ({examples})")
        return said


@dataclass
class DocBinSummary(SpanAlignment):
    """What went into a DocBin, and what could not."""

    path: str
    docs: int = 0
    entities: int = 0  # entities, or spans (`unit`) of a span group, written
    overlapping: int = 0  # spans overlapping a longer one: dropped
    unmapped: int = 0  # spans or categories the label map drops
    labels: Counter[str] = field(default_factory=Counter)  # entities or accepted categories
    unit: str = "entities"  # or "spans", written to doc.spans[spans_key]
    spans_key: str | None = None

    def warnings(self) -> list[str]:
        said = self.alignment_warnings(self.unit, "the blank tokeniser")
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
        spans_key: str = DEFAULT_SPANS_KEY,
    ) -> None:
        self.path = check_output_path(path, overwrite=overwrite)
        self.overwrite = overwrite
        self.nlp = blank(lang)
        from spacy.tokens import DocBin

        self.docbin = DocBin(store_user_data=False)
        self.label_map = label_map or LabelMap.keep_all()
        self.categories = tuple(categories)
        self.spans_key = spans_key
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
            self._set_spans(doc, task)
        self.docbin.add(doc)
        self.summary.docs += 1

    def _set_spans(self, doc: Doc, task: ProdigyTask) -> None:
        """Entities as `doc.ents` (no overlap: the longest kept), spans as the span group
        `doc.spans[spans_key]` (every one kept)."""
        from spacy.util import filter_spans

        summary = self.summary
        spans = [s for key in task.span_keys if (s := self._span(doc, task, key)) is not None]
        if task.kind is TaskKind.SPANS:
            summary.unit, summary.spans_key = "spans", self.spans_key
            doc.spans[self.spans_key] = spans
            kept = spans
        else:
            kept = filter_spans(spans)
            summary.overlapping += len(spans) - len(kept)
            doc.ents = kept
        summary.entities += len(kept)
        summary.labels.update(span.label_ for span in kept)

    def _span(self, doc: Doc, task: ProdigyTask, key: tuple[int, int, str]) -> Any:
        """The Span of `key` on the tokens of `doc`, contracted to them; None (counted) when
        the label map drops it or it lies inside one token."""
        start, end, label = key
        target = self.label_map(label)
        if target is None:
            self.summary.unmapped += 1
            return None
        return self.summary.char_span(doc, start, end, target, repr(task.text[:60]))

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


# --- read back: a DocBin as accepted Prodigy records ---------------------------------------


def docbin_records(
    path: str | Path, stats: Any, *, kind: TaskKind | None = None
) -> Iterator[dict[str, Any]]:
    """The accepted Prodigy records of a DocBin, one per Doc; `kind` (`--gold-format
    docbin:ner` / `docbin:spans`) chooses where a Doc has both entities and a span group."""
    from spacy.tokens import DocBin
    from spacy.vocab import Vocab

    p = check_input_file(path)
    try:
        docs = list(DocBin().from_bytes(p.read_bytes()).get_docs(Vocab()))
    except (ValueError, KeyError, TypeError) as err:  # msgpack / zlib say it is no DocBin
        raise InputError(p, None, f"not a spaCy DocBin ({type(err).__name__}: {err})") from None
    try:
        found, key = _docbin_kind(docs, kind)
    except RecordError as err:
        raise InputError(p, None, err.problem) from None
    for i, doc in enumerate(docs):
        stats.tasks += 1
        answer: list[Any]
        if found is TaskKind.CHOICE:
            answer = [c for c, score in doc.cats.items() if score >= 0.5]
        else:
            spans = doc.ents if found is TaskKind.NER else doc.spans.get(key, ())
            answer = [(s.start_char, s.end_char, s.label_) for s in spans]
        stats.annotated += 1
        yield accepted_record(found, doc.text, answer, {"docbin_doc": i})


def _docbin_kind(docs: Sequence[Doc], asked: TaskKind | None) -> tuple[TaskKind, str]:
    """(kind, span group key) of the Docs of a DocBin: see the module's docstring."""
    # A group present but empty in every Doc still says spans (convert writes one per Doc).
    keys = sorted({k for doc in docs for k in doc.spans})
    key = DEFAULT_SPANS_KEY if DEFAULT_SPANS_KEY in keys or not keys else keys[0]
    if len(keys) > 1 and DEFAULT_SPANS_KEY not in keys:
        raise RecordError(
            f"span groups {', '.join(keys)} and none named {DEFAULT_SPANS_KEY!r}: keep the one "
            "to read (disagree reads doc.spans['sc'], or a DocBin's only group)"
        )
    ents = any(doc.ents for doc in docs)
    if asked is not None:
        return asked, key
    if ents and keys:
        raise RecordError(
            f"holds both entities (doc.ents) and spans (doc.spans[{key!r}]); say which to read "
            "with --gold-format docbin:ner or docbin:spans"
        )
    if keys:
        return TaskKind.SPANS, key
    if not ents and any(doc.cats for doc in docs):
        return TaskKind.CHOICE, key
    return TaskKind.NER, key


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
