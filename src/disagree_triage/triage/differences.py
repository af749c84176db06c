"""Name every difference between several models' span sets for one text.

Spans of all models are grouped by overlap (two spans overlapping, directly or through a chain,
fall in one group). A group where every model found exactly the same spans is agreement;
otherwise it is one `Difference`, of one of four conflicts:

- `label`: same boundaries, different labels ("label conflict");
- `boundary`: overlapping spans, one label, different boundaries ("boundary conflict");
- `label+boundary`: overlapping spans differing in both;
- `missing`: the models that found something agree, but at least one model found nothing there.

A conflict group can also miss some models; `missing_models` says which, whatever the kind.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

from ..core.spans import SpanKey, SpanSet

LABEL, BOUNDARY, BOTH, MISSING = "label", "boundary", "label+boundary", "missing"
CONFLICT_WORDS = {
    LABEL: "label conflict",
    BOUNDARY: "boundary conflict",
    BOTH: "label and boundary conflict",
    MISSING: "found by some models only",
}


class Difference(NamedTuple):
    """One group of overlapping spans on which the models do not all agree.

    (A NamedTuple: diff creates one per difference of every disagreeing example.)
    """

    conflict: str  # LABEL, BOUNDARY, BOTH or MISSING
    start: int
    end: int
    spans: tuple[SpanSet, ...]  # per model, the spans it has in this group (may be empty)
    missing_models: tuple[int, ...]  # indices of the models with no span in the group

    @property
    def labels(self) -> frozenset[str]:
        return frozenset(label for spans in self.spans for _, _, label in spans)

    def describe(self, text: str, models: Sequence[str]) -> str:
        """E.g. `label conflict: spacy-md: ORG 'Meta' | llm: PERSON 'Meta'`."""
        parts = []
        for name, spans in zip(models, self.spans, strict=True):
            ordered = sorted(spans) if len(spans) > 1 else spans
            found = ", ".join(f"{label} {text[s:e]!r}" for s, e, label in ordered)
            parts.append(f"{name}: {found or '—'}")
        return f"{CONFLICT_WORDS[self.conflict]}: " + " | ".join(parts)


def find_differences(span_sets: Sequence[SpanSet]) -> tuple[Difference, ...]:
    """Every difference between the span sets, in text order; () when all agree exactly."""
    return _find_differences(tuple(span_sets))


# Several scorers ask for the same example's differences in a row; compute them once.
@lru_cache(maxsize=256)
def _find_differences(span_sets: tuple[SpanSet, ...]) -> tuple[Difference, ...]:
    if len(span_sets) < 2 or all(spans == span_sets[0] for spans in span_sets[1:]):
        return ()
    differences = []
    n = len(span_sets)
    # One sweep over every model's spans in text order: a span that starts before the current
    # group ends overlaps it (directly or through a chain) and joins it.
    groups: list[tuple[int, list[int], list[set[SpanKey]]]] = []
    group_end = -1
    for start, end, label, m in sorted(
        (s, e, label, m) for m, spans in enumerate(span_sets) for s, e, label in spans
    ):
        if start >= group_end:
            groups.append((start, [end], [set() for _ in range(n)]))
            group_end = end
        elif end > group_end:
            group_end = end
            groups[-1][1][0] = end
        groups[-1][2][m].add((start, end, label))
    for start, (end,), group in groups:
        per_model = tuple(frozenset(spans) for spans in group)
        if all(spans == per_model[0] for spans in per_model[1:]):
            continue
        missing = tuple(i for i, spans in enumerate(per_model) if not spans)
        found = [spans for spans in per_model if spans]
        if all(spans == found[0] for spans in found[1:]):
            conflict = MISSING
        else:
            boundaries = {(s, e) for spans in found for s, e, _ in spans}
            labels = {label for spans in found for _, _, label in spans}
            if len(boundaries) == 1:
                conflict = LABEL
            elif len(labels) == 1:
                conflict = BOUNDARY
            else:
                conflict = BOTH
        differences.append(Difference(conflict, start, end, per_model, missing))
    return tuple(differences)
