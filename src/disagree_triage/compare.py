"""Name every difference between several models' span sets for one text.

Spans of all models are grouped by overlap (two spans overlapping, directly or through a chain,
fall in one group). A group where every model found exactly the same spans is agreement;
otherwise it is one `Difference`:

- `label`: same boundaries, different labels ("label conflict");
- `boundary`: overlapping spans, one label, different boundaries ("boundary conflict");
- `label+boundary`: overlapping spans differing in both;
- `missing`: the models that found something agree, but at least one model found nothing there.

A conflict group can also miss some models; `missing_models` says which, whatever the kind.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

SpanKey = tuple[int, int, str]  # (start, end, label), character offsets
SpanSet = frozenset[SpanKey]

LABEL, BOUNDARY, BOTH, MISSING = "label", "boundary", "label+boundary", "missing"
KIND_WORDS = {
    LABEL: "label conflict",
    BOUNDARY: "boundary conflict",
    BOTH: "label and boundary conflict",
    MISSING: "found by some models only",
}


@dataclass(frozen=True)
class Difference:
    """One group of overlapping spans on which the models do not all agree."""

    kind: str
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
            found = ", ".join(f"{label} {text[s:e]!r}" for s, e, label in sorted(spans))
            parts.append(f"{name}: {found or '—'}")
        return f"{KIND_WORDS[self.kind]}: " + " | ".join(parts)


def _groups(span_sets: Sequence[SpanSet]) -> list[tuple[int, int]]:
    """Merged character ranges of overlapping spans across all models."""
    ranges = sorted({(s, e) for spans in span_sets for s, e, _ in spans})
    merged: list[list[int]] = []
    for start, end in ranges:
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def find_differences(span_sets: Sequence[SpanSet]) -> list[Difference]:
    """Every difference between the span sets, in text order; [] when all agree exactly."""
    return list(_find_differences(tuple(span_sets)))


# Several scorers ask for the same example's differences in a row; compute them once.
@lru_cache(maxsize=256)
def _find_differences(span_sets: tuple[SpanSet, ...]) -> tuple[Difference, ...]:
    if len(span_sets) < 2 or all(spans == span_sets[0] for spans in span_sets[1:]):
        return ()
    differences = []
    groups = _groups(span_sets)
    group_starts = [start for start, _ in groups]
    # One pass over the spans: each falls in the group whose range starts at or before it.
    members: list[list[set[SpanKey]]] = [[set() for _ in span_sets] for _ in groups]
    for m, spans in enumerate(span_sets):
        for span in spans:
            members[bisect_right(group_starts, span[0]) - 1][m].add(span)
    for (start, end), group in zip(groups, members, strict=True):
        per_model = tuple(frozenset(spans) for spans in group)
        if all(spans == per_model[0] for spans in per_model[1:]):
            continue
        missing = tuple(i for i, spans in enumerate(per_model) if not spans)
        found = [spans for spans in per_model if spans]
        if all(spans == found[0] for spans in found[1:]):
            kind = MISSING
        else:
            boundaries = {(s, e) for spans in found for s, e, _ in spans}
            labels = {label for spans in found for _, _, label in spans}
            if len(boundaries) == 1:
                kind = LABEL
            elif len(labels) == 1:
                kind = BOUNDARY
            else:
                kind = BOTH
        differences.append(Difference(kind, start, end, per_model, missing))
    return tuple(differences)
