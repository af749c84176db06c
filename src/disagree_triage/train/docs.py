"""Training Docs that say only what is known: the annotations, and the base model's own
answers for what the annotators were not asked.

An annotated text (entities):
- its annotated spans, their labels put back into the model's (labels.py), are gold, and so is
  the absence of any *covered* label elsewhere in the text;
- the base model's entities of the other labels (DATE, GPE where only ORG and PERSON were
  annotated) are kept as gold (`other_labels="keep"`, the default: what the pipeline knew is
  taught again, not unlearned) or marked missing (`"missing"`: no loss either way); never "O".
  Where such an entity overlaps an annotated span the annotation wins and its remaining tokens
  are missing.
A rehearsal text (unannotated, `--rehearse`): the base model's entities of the other labels are
gold; its entities of covered labels are missing (the annotations, not the old model, teach
those), the rest "O".

Spans (a span categoriser, `doc.spans[KEY]`): every annotated span of a covered label is gold,
overlapping ones included (spans may overlap; none is dropped), and so is the absence of any
other covered span; the base spancat's spans of the other labels are kept as gold. A spancat
teaches every candidate span yes or no, so nothing can be left missing: `--other-labels missing`
is refused, and a rehearsal text is used only where the base finds no covered span in it (its
spans are then all gold), as for an exclusive textcat below.

Categories: a covered category is 1 or 0 as annotated. For `textcat_multilabel` another
category is the base model's answer (score ≥ 0.5) with "keep", absent (missing) with "missing".
An exclusive `textcat` cannot leave a category missing (spaCy fills it with 0): a text whose
annotation accepts a covered category has every other one at 0; one that accepts none has the
base model's choice among the others. Rehearsal texts: the base model's choice where it is not
a covered category (exclusive; the other texts are not rehearsed), or its answers for the other
categories (multi-label).

Character offsets become the base pipeline's tokens (the tokeniser the new pipeline keeps): a
span not on token boundaries is contracted to the tokens inside it (`adjusted`); one inside a
single token is dropped (`misaligned`); of overlapping annotated spans the longest is kept.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..formats.docbin import SpanAlignment
from .annotations import Annotation, DisagreeError, TaskKind, components_for
from .labels import ReverseMap

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc, Span

KEEP, MISSING = "keep", "missing"
OTHER_LABELS = (KEEP, MISSING)
THRESHOLD = 0.5  # a multi-label category is "predicted" from this score on, as predict says


@dataclass
class DocStats(SpanAlignment):
    """What the training Docs hold, and what could not go in (`adjusted`, `misaligned`: put
    on the base pipeline's tokens by the DocBin's own rule, `SpanAlignment`)."""

    annotated: int = 0  # annotated texts
    rehearsal: int = 0  # unannotated texts, with the base model's answers
    entities: int = 0  # annotated entities in the Docs
    overlapping: int = 0  # overlapping a longer annotated span: left out
    unmapped: int = 0  # spans or categories whose label the map leaves out
    kept_from_base: int = 0  # the base model's entities of other labels, kept as gold
    missing_tokens: int = 0  # tokens whose entity is not known (neither gold nor "O")
    kept_finer: int = 0  # annotated spans the base model labels with another label of the map
    lengths: Counter[int] = field(default_factory=Counter)  # annotated spans' lengths, in tokens
    labels: Counter[str] = field(default_factory=Counter)  # annotated labels, as trained
    kind: TaskKind = TaskKind.NER  # what the warnings call a span: entities, or spans

    def warnings(self) -> list[str]:
        unit = f"annotated {self.kind.unit}"
        said = self.alignment_warnings(unit, "the base pipeline's tokeniser")
        if self.overlapping:  # entities only: spans may overlap
            said.append(f"{self.overlapping:,} {unit} overlap a longer one: left out")
        return said


def predict_base(nlp: Language, component: str, texts: Sequence[str]) -> list[Doc]:
    """The base pipeline's own answers: `component` and what it needs only (nothing, for a
    component train adds: the base has no answer of that kind)."""
    if component not in nlp.pipe_names:
        return [nlp.make_doc(text) for text in texts]
    needed = components_for(nlp, [component])
    with nlp.select_pipes(enable=needed):
        return list(nlp.pipe(texts, batch_size=64))


class DocBuilder:
    """Training Docs from annotations and the base model's predicted Docs of the same texts."""

    def __init__(
        self,
        nlp: Language,
        kind: TaskKind,
        label_map: ReverseMap,
        *,
        other_labels: str = KEEP,
        exclusive: bool = False,
        spans_key: str = "sc",
    ) -> None:
        if other_labels not in OTHER_LABELS:
            raise DisagreeError(
                f"--other-labels {other_labels!r}: choose one of {', '.join(OTHER_LABELS)}"
            )
        self.nlp = nlp
        self.kind = kind
        self.map = label_map
        self.keep = other_labels == KEEP
        self.exclusive = exclusive
        self.spans_key = spans_key
        self.stats = DocStats(kind=kind)

    def annotated(self, annotation: Annotation, predicted: Doc) -> Doc:
        self.stats.annotated += 1
        doc = self.nlp.make_doc(annotation.text)
        if self.kind is TaskKind.CHOICE:
            doc.cats = self._annotated_cats(annotation, predicted)
        elif self.kind is TaskKind.SPANS:
            self._annotated_spans(doc, annotation, predicted)
        else:
            self._annotated_ents(doc, annotation, predicted)
        return doc

    def rehearsal(self, predicted: Doc) -> Doc | None:
        """None for a text an exclusive textcat's base puts in a covered category: it can
        only be taught that category (no category can be missing), and covered categories are
        the annotations' to teach."""
        cats = predicted.cats
        if self.exclusive and cats and max(cats, key=cats.__getitem__) in self.map.covered:
            return None
        if self.kind is TaskKind.SPANS:
            return self._rehearsal_spans(predicted)
        self.stats.rehearsal += 1
        doc = self.nlp.make_doc(predicted.text)
        if self.kind is TaskKind.CHOICE:
            doc.cats = self._base_cats(predicted, every=self.exclusive)
            return doc
        covered = self.map.covered
        ents = [
            _labelled(doc, e.start, e.end, e.label_)
            for e in predicted.ents
            if e.label_ not in covered
        ]
        missing = [doc[e.start : e.end] for e in predicted.ents if e.label_ in covered]
        doc.set_ents(ents, missing=missing, default="outside")
        self.stats.missing_tokens += sum(len(s) for s in missing)
        return doc

    # --- entities ------------------------------------------------------------------------

    def _annotated_ents(self, doc: Doc, annotation: Annotation, predicted: Doc) -> None:
        from spacy.util import filter_spans

        spans = list(self._mapped(doc, annotation, predicted.ents))
        gold = filter_spans(spans)
        self.stats.overlapping += len(spans) - len(gold)
        self.stats.entities += len(gold)
        self.stats.labels.update(s.label_ for s in gold)
        taken = {i for span in gold for i in range(span.start, span.end)}
        ents, missing = list(gold), []
        for ent in predicted.ents:
            if ent.label_ in self.map.covered:
                continue  # the annotators decided these
            tokens = range(ent.start, ent.end)
            if self.keep and not taken.intersection(tokens):
                ents.append(_labelled(doc, ent.start, ent.end, ent.label_))
                self.stats.kept_from_base += 1
                continue
            for start, end in _runs(i for i in tokens if i not in taken):
                missing.append(doc[start:end])
                self.stats.missing_tokens += end - start
        doc.set_ents(ents, missing=missing, default="outside")

    def _mapped(
        self, doc: Doc, annotation: Annotation, base_spans: Iterable[Span]
    ) -> Iterator[Span]:
        """The annotated spans on `doc`'s tokens, under the model's labels (a finer label of
        the base's own span on the same characters is kept: `LabelMap.model_label`)."""
        base = {(s.start_char, s.end_char): s.label_ for s in base_spans}
        for start, end, label in annotation.spans:
            target = self.map.model_label(label, base.get((start, end)))
            if target is None:
                self.stats.unmapped += 1
                continue
            span = self.stats.char_span(doc, start, end, target, annotation.source)
            if span is not None:
                self.stats.kept_finer += target != self.map.to_model[label]
                yield span

    # --- spans ---------------------------------------------------------------------------

    def _base_spans(self, predicted: Doc) -> list[Span]:
        return list(predicted.spans.get(self.spans_key, ()))

    def _annotated_spans(self, doc: Doc, annotation: Annotation, predicted: Doc) -> None:
        gold: dict[tuple[int, int, str], Span] = {}  # contracted spans can coincide: once each
        for span in self._mapped(doc, annotation, self._base_spans(predicted)):
            gold.setdefault((span.start, span.end, span.label_), span)
        self.stats.entities += len(gold)
        self.stats.labels.update(s.label_ for s in gold.values())
        self.stats.lengths.update(len(s) for s in gold.values())
        kept = [
            _labelled(doc, s.start, s.end, s.label_)
            for s in self._base_spans(predicted)
            if s.label_ not in self.map.covered
        ]
        self.stats.kept_from_base += len(kept)
        doc.spans[self.spans_key] = [*gold.values(), *kept]

    def _rehearsal_spans(self, predicted: Doc) -> Doc | None:
        spans = self._base_spans(predicted)
        if any(s.label_ in self.map.covered for s in spans):
            return None  # a covered span cannot be left missing; the annotations teach those
        self.stats.rehearsal += 1
        doc = self.nlp.make_doc(predicted.text)
        doc.spans[self.spans_key] = [_labelled(doc, s.start, s.end, s.label_) for s in spans]
        return doc

    # --- categories ----------------------------------------------------------------------

    def _annotated_cats(self, annotation: Annotation, predicted: Doc) -> dict[str, float]:
        accepted = set()
        for category in annotation.accept or ():
            target = self.map.model_label(category)
            if target is None:
                self.stats.unmapped += 1
            else:
                accepted.add(target)
        if self.exclusive and len(accepted) > 1:
            raise DisagreeError(
                f"{annotation.source}: accepts {', '.join(sorted(accepted))}, but the base "
                "pipeline's textcat gives one category per text (exclusive); annotate one, or "
                "train a textcat_multilabel pipeline"
            )
        self.stats.labels.update(accepted)
        cats = {category: float(category in accepted) for category in self.map.covered}
        if self.exclusive and accepted:
            return {category: cats.get(category, 0.0) for category in predicted.cats}
        if self.exclusive or self.keep:
            others = self._base_cats(predicted, every=self.exclusive)
            cats.update({c: v for c, v in others.items() if c not in self.map.covered})
        return cats

    def _base_cats(self, predicted: Doc, *, every: bool) -> dict[str, float]:
        """The base model's answer as 0/1 categories: its one choice among the categories not
        covered (exclusive), or its answer for each of them (multi-label)."""
        others = {c: s for c, s in predicted.cats.items() if c not in self.map.covered}
        if every:  # exclusive: one category is 1, every other (covered ones too) 0
            best = max(others, key=others.__getitem__) if others else None
            return {c: float(c == best) for c in predicted.cats}
        return {c: float(s >= THRESHOLD) for c, s in others.items()}


def _labelled(doc: Doc, start: int, end: int, label: str) -> Span:
    from spacy.tokens import Span

    return Span(doc, start, end, label=label)


def _runs(indices: Iterable[int]) -> Iterator[tuple[int, int]]:
    """Consecutive token indices as (start, end) runs."""
    start = end = None
    for i in indices:
        if end is not None and i == end:
            end += 1
            continue
        if start is not None and end is not None:
            yield start, end
        start, end = i, i + 1
    if start is not None and end is not None:
        yield start, end


def write_docbin(docs: Iterable[Doc], path: str) -> int:
    """The Docs as a `.spacy` file `spacy train` reads (missing entity tokens stay missing)."""
    from spacy.tokens import DocBin

    docbin = DocBin(store_user_data=False)
    n = 0
    for doc in docs:
        docbin.add(doc)
        n += 1
    docbin.to_disk(path)
    return n
