"""Before and after: the base pipeline and the trained one on the held-out (dev) texts.

Two questions, two references:
- the labels the annotations cover: precision, recall and F1 of each pipeline against the
  annotations of the dev texts (exact spans; for categories, each category as a yes/no);
- every other label: the trained pipeline against the base pipeline's own answers on the same
  texts (no annotation says more about them). Before is 1.0 by definition; after says how much
  of what the pipeline knew it kept.

    >>> scores = score_dev(dev, base_docs, trained_docs, label_map, TaskKind.NER)  # doctest: +SKIP
    >>> scores.covered_after.f1 - scores.covered_before.f1  # doctest: +SKIP
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .annotations import PRF, Annotation, Span, TaskKind
from .docs import THRESHOLD
from .labels import ReverseMap

if TYPE_CHECKING:
    from spacy.tokens import Doc

ANNOTATIONS, BASE_MODEL = "annotations", "base model"


@dataclass
class LabelScores:
    label: str  # the annotators' label (covered), or the model's (other labels)
    model_labels: tuple[str, ...]  # the model labels it stands for
    against: str  # ANNOTATIONS or BASE_MODEL
    before: PRF
    after: PRF

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "model_labels": list(self.model_labels),
            "against": self.against,
            "before": self.before.as_dict(),
            "after": self.after.as_dict(),
        }


@dataclass
class DevScores:
    examples: int
    labels: list[LabelScores] = field(default_factory=list)

    def total(self, against: str, when: str) -> PRF:
        """Micro-averaged over the labels measured against `against`, `before` or `after`."""
        rows = [getattr(s, when) for s in self.labels if s.against == against]
        return PRF(*(sum(getattr(r, k) for r in rows) for k in ("tp", "fp", "fn")))

    @property
    def covered_before(self) -> PRF:
        return self.total(ANNOTATIONS, "before")

    @property
    def covered_after(self) -> PRF:
        return self.total(ANNOTATIONS, "after")

    @property
    def others_after(self) -> PRF:
        """The trained pipeline against the base's answers, over every label not annotated."""
        return self.total(BASE_MODEL, "after")

    def as_dict(self) -> dict[str, Any]:
        return {
            "examples": self.examples,
            "annotated_labels": {
                "before": self.covered_before.as_dict(),
                "after": self.covered_after.as_dict(),
            },
            "other_labels_against_base": self.others_after.as_dict(),
            "per_label": [s.as_dict() for s in self.labels],
        }


def answers(doc: Doc, kind: TaskKind, exclusive: bool, spans_key: str = "sc") -> set[Span]:
    """A pipeline's answer on one text as (start, end, label) keys: its entities, its spans
    in `doc.spans[spans_key]`, or its categories as whole-text keys (the top one for an
    exclusive textcat, else each from THRESHOLD on)."""
    if kind is TaskKind.NER:
        return {(e.start_char, e.end_char, e.label_) for e in doc.ents}
    if kind is TaskKind.SPANS:
        return {(s.start_char, s.end_char, s.label_) for s in doc.spans.get(spans_key, ())}
    cats = doc.cats
    if exclusive:
        chosen = {max(cats, key=cats.__getitem__)} if cats else set()
    else:
        chosen = {c for c, s in cats.items() if s >= THRESHOLD}
    return {(0, len(doc.text), c) for c in chosen}


def gold_keys(annotation: Annotation, label_map: ReverseMap) -> set[Span]:
    """The annotation's keys whose label the map covers, in the annotators' labels."""
    if annotation.accept is not None:
        end = len(annotation.text)
        return {(0, end, c) for c in annotation.accept if c in label_map.sources}
    return {key for key in annotation.spans if key[2] in label_map.sources}


def score_dev(
    dev: Sequence[Annotation],
    base_docs: Sequence[Doc],
    trained_docs: Sequence[Doc],
    label_map: ReverseMap,
    kind: TaskKind,
    *,
    exclusive: bool = False,
    spans_key: str = "sc",
) -> DevScores:
    """Per label: both pipelines against the annotations (covered labels, in the annotators'
    labels: GPE and LOC both count as LOCATION), and the trained one against the base (other
    labels, away from the annotated spans: where the annotators said what a span is, the
    base's other label there is not something to keep; spans may overlap, so for spans every
    other-label span counts)."""
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    others: set[str] = set()
    covered = label_map.covered
    for annotation, base_doc, trained_doc in zip(dev, base_docs, trained_docs, strict=True):
        gold = gold_keys(annotation, label_map)
        base = answers(base_doc, kind, exclusive, spans_key)
        trained = answers(trained_doc, kind, exclusive, spans_key)
        for when, predicted in (("before", base), ("after", trained)):
            in_user_labels = {
                (s, e, label_map.user_label(lb)) for s, e, lb in predicted if lb in covered
            }
            _count(counts, when, gold, in_user_labels)
        base_others, trained_others = (
            {k for k in keys if k[2] not in covered and not _overlaps_any(k, gold, kind)}
            for keys in (base, trained)
        )
        _count(counts, "after", base_others, trained_others)
        others.update(k[2] for k in base_others | trained_others)
    scores = DevScores(len(dev))
    for label, sources in label_map.sources.items():
        before, after = PRF(*counts[("before", label)]), PRF(*counts[("after", label)])
        scores.labels.append(LabelScores(label, sources, ANNOTATIONS, before, after))
    for label in sorted(others):
        after = PRF(*counts[("after", label)])
        scores.labels.append(LabelScores(label, (label,), BASE_MODEL, _identity(after), after))
    return scores


def _overlaps_any(key: Span, gold: set[Span], kind: TaskKind) -> bool:
    if kind is not TaskKind.NER:
        return False  # categories, and spans (they may overlap), do not take each other's place
    return any(key[0] < end and start < key[1] for start, end, _ in gold)


def _count(
    counts: dict[tuple[str, str], list[int]], when: str, gold: set[Span], predicted: set[Span]
) -> None:
    for key in gold & predicted:
        counts[(when, key[2])][0] += 1
    for key in predicted - gold:
        counts[(when, key[2])][1] += 1
    for key in gold - predicted:
        counts[(when, key[2])][2] += 1


def _identity(after: PRF) -> PRF:
    """The base against itself: every one of its answers right."""
    support = after.tp + after.fn
    return PRF(support, 0, 0)
