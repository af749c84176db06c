"""Name every difference between several models' span sets for one text.

A difference is judged per span (start, end, label): a span every model found is agreement,
whatever else overlaps it, and is never part of a difference. The other spans (the *disputed*
ones) are linked where they conflict: two overlapping disputed spans are one difference when
some model found the first and not the second and another model the second and not the first
(directly or through a chain of such links). A disputed span linked to nothing is a difference
of its own. A difference is one of four conflicts:

- `label`: same boundaries, different labels ("label conflict");
- `boundary`: overlapping spans, one label, different boundaries ("boundary conflict");
- `label+boundary`: overlapping spans differing in both, or links of both kinds;
- `missing`: the models that found something agree, but at least one model found nothing there.

A conflict can also miss some models; `missing_models` says which, whatever the kind.

Entities never overlap within one model, so two overlapping disputed entities always come from
different models and every overlap links: for entities a difference is a group of overlapping
spans, as a reader expects. Spans (`spans_manual`, spaCy's `spancat`) may overlap within one
model, and a model's own overlapping spans are not a conflict: a SKILL inside a longer SKILL,
or one span with two labels, found by one model and not by the other, are two `missing`
differences, not a label or boundary conflict; and a nested span both models found is not
dragged into its container's difference.

    >>> a = frozenset({(0, 10, "SKILL"), (0, 4, "TOOL")})
    >>> [(d.conflict, d.start, d.end) for d in find_differences([a, frozenset({(0, 4, "TOOL")})])]
    [('missing', 0, 10)]
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
    n = len(span_sets)
    holders: dict[SpanKey, int] = {}  # span -> the models that found it, as a bit mask
    for m, spans in enumerate(span_sets):
        for key in spans:
            holders[key] = holders.get(key, 0) | (1 << m)
    everyone = (1 << n) - 1
    disputed = sorted(key for key, mask in holders.items() if mask != everyone)
    root = list(range(len(disputed)))  # union-find over the disputed spans

    def find(i: int) -> int:
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i

    links: list[tuple[int, str]] = []  # (one end of a link, its conflict)
    active: list[int] = []  # disputed spans that may still overlap the next one (sorted sweep)
    for i, (start, end, label) in enumerate(disputed):
        active = [j for j in active if disputed[j][1] > start]
        mine = holders[disputed[i]]
        for j in active:
            theirs = holders[disputed[j]]
            if mine & ~theirs and theirs & ~mine:  # a model each way: they conflict
                s, e, other = disputed[j]
                links.append((i, LABEL if (s, e) == (start, end) else BOUNDARY if other == label
                              else BOTH))  # fmt: skip
                root[find(i)] = find(j)
        active.append(i)
    groups: dict[int, list[int]] = {}
    for i in range(len(disputed)):
        groups.setdefault(find(i), []).append(i)
    conflicts: dict[int, set[str]] = {}
    for i, conflict in links:
        conflicts.setdefault(find(i), set()).add(conflict)
    differences = []
    for group_root, members in groups.items():  # in text order: members and groups are sorted
        keys = [disputed[i] for i in members]
        per_model = tuple(frozenset(k for k in keys if holders[k] >> m & 1) for m in range(n))
        missing = tuple(m for m, spans in enumerate(per_model) if not spans)
        found = conflicts.get(group_root, set())
        conflict = MISSING if not found else found.pop() if len(found) == 1 else BOTH
        end = max(k[1] for k in keys)
        differences.append(Difference(conflict, keys[0][0], end, per_model, missing))
    return tuple(differences)
