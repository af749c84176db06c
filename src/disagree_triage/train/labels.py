"""The user's label map, read backwards: from the annotators' labels to the base model's.

`predict --ner ORG:ORGANISATION,PERSON` renamed the model's ORG to ORGANISATION; the annotators
then labelled ORGANISATION. `train` takes the same map and puts each annotated label back into
the model's schema (ORGANISATION → ORG), so the pipeline learns its own labels and `predict`
with the same map reads the new pipeline as it read the old one.

    >>> m = reverse_label_map("ORG:ORGANISATION,PERSON", base_labels=["ORG", "PERSON", "GPE"],
    ...                       annotated_labels={"ORGANISATION", "PERSON"})
    >>> m.model_label("ORGANISATION"), sorted(m.covered)
    ('ORG', ['ORG', 'PERSON'])

A map that sends two model labels onto one (`GPE:LOCATION,LOC:LOCATION`) cannot be read
backwards on its own: an annotated LOCATION could be either. That is an error naming the label,
unless `--train-as LOCATION:GPE` says which; then a LOCATION span the base model itself calls
LOC (same offsets) stays LOC, and the rest become GPE, so the finer distinction the base model
makes is kept where it already agrees with the annotator.

*Covered* model labels are those the annotations decide: every source label of the map (GPE
and LOC both, for LOCATION). For an annotated text, a covered label is gold (its absence too);
every other label is not the annotators' business and is kept from the base model or left
missing (docs.py), never taught as "O".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .annotations import DisagreeError, LabelMap, label_hint


@dataclass(frozen=True)
class ReverseMap:
    """Annotation label -> model label, and what the annotations cover."""

    to_model: Mapping[str, str]  # annotation label -> the model label it trains (the default)
    sources: Mapping[str, tuple[str, ...]]  # annotation label -> every model label mapped on it
    covered: frozenset[str]  # model labels the annotations decide
    new: frozenset[str] = frozenset()  # model labels the base pipeline does not know yet
    never_annotated: tuple[str, ...] = ()  # annotation labels of the map no annotation uses
    dropped: tuple[str, ...] = ()  # annotated labels the map leaves out
    renamed: Mapping[str, str] = field(default_factory=dict)  # for the summary: model -> user

    def model_label(self, label: str, base_label: str | None = None) -> str | None:
        """The model label that an annotated `label` trains (None: not in the map). Where
        several model labels share `label`, the one the base model gave the same span
        (`base_label`), else the chosen one."""
        candidates = self.sources.get(label)
        if candidates is None:
            return None
        if base_label is not None and base_label in candidates:
            return base_label
        return self.to_model[label]

    def user_label(self, model_label: str) -> str:
        """The annotators' name of a model label (itself where the map does not rename it)."""
        return self.renamed.get(model_label, model_label)


def parse_train_as(spec: str | None) -> dict[str, str]:
    """`LOCATION:GPE,X:Y` -> {"LOCATION": "GPE", "X": "Y"}."""
    if not spec:
        return {}
    chosen: dict[str, str] = {}
    for item in spec.split(","):
        target, sep, source = (part.strip() for part in item.partition(":"))
        if not sep or not target or not source:
            raise DisagreeError(
                f"--train-as {spec!r}: write ANNOTATED:MODEL pairs, e.g. LOCATION:GPE"
            )
        chosen[target] = source
    return chosen


def reverse_label_map(
    spec: str | None,
    *,
    base_labels: Iterable[str] | None,
    annotated_labels: set[str],
    train_as: str | None = None,
    option: str = "--ner",
) -> ReverseMap:
    """Read `spec` (predict's map) backwards onto the base model's labels. `base_labels` None:
    the component is new (train adds it), so every model label of the map is new, renamed or
    not: it gets the name the map gives it on the model's side.

    >>> added = reverse_label_map("PER:PERSON", base_labels=None, annotated_labels={"PERSON"})
    >>> dict(added.to_model), sorted(added.new)
    ({'PERSON': 'PER'}, ['PER'])
    """
    added = base_labels is None
    known = set(base_labels or ())
    chosen = parse_train_as(train_as)
    if spec is None:
        if chosen:
            raise DisagreeError(f"--train-as needs the label map it chooses in: give {option}")
        labels = sorted(annotated_labels)
        return ReverseMap(
            MappingProxyType({label: label for label in labels}),
            MappingProxyType({label: (label,) for label in labels}),
            frozenset(labels),
            new=frozenset(label for label in labels if label not in known),
        )
    mapping = LabelMap.parse(spec, option=option).mapping or {}
    sources: dict[str, list[str]] = {}
    new = set()
    for source, target in mapping.items():
        if source not in known:
            # A renamed label the model lacks is a typo, not a new label (unless all are new).
            if source != target and not added:
                raise DisagreeError(
                    f"{option} {spec!r}: the base pipeline has no label {source!r}"
                    f"{label_hint(source, known) or '.'} It has: {', '.join(sorted(known))}"
                )
            new.add(source)
        sources.setdefault(target, []).append(source)
    to_model = {
        target: _one_source(target, found, chosen, spec, option)
        for target, found in sources.items()
    }
    unknown_choice = sorted(set(chosen) - set(sources))
    if unknown_choice:
        raise DisagreeError(
            f"--train-as names {', '.join(unknown_choice)}, which {option} {spec!r} does not "
            f"map to; it maps to {', '.join(sorted(sources))}"
        )
    used = [target for target in sources if target in annotated_labels]
    if not used:
        raise DisagreeError(
            f"{option} {spec!r} maps to {', '.join(sorted(sources))}, but the annotations use "
            f"{', '.join(sorted(annotated_labels)) or 'no label at all'}: nothing to train"
        )
    return ReverseMap(
        MappingProxyType(to_model),
        MappingProxyType({target: tuple(found) for target, found in sources.items()}),
        frozenset(mapping),
        new=frozenset(new),
        never_annotated=tuple(t for t in sources if t not in annotated_labels),
        dropped=tuple(sorted(annotated_labels - set(sources))),
        renamed={s: t for s, t in mapping.items() if s != t},
    )


def _one_source(
    target: str, found: list[str], chosen: dict[str, str], spec: str, option: str
) -> str:
    """The model label that `target` trains: its only source, or the one `--train-as` names."""
    if target in chosen:
        if chosen[target] not in found:
            raise DisagreeError(
                f"--train-as {target}:{chosen[target]}: {option} {spec!r} maps "
                f"{', '.join(found)} to {target}, not {chosen[target]}"
            )
        return chosen[target]
    if len(found) == 1:
        return found[0]
    raise DisagreeError(
        f"{option} {spec!r} maps {' and '.join(found)} onto {target}, so an annotated {target} "
        f"cannot be put back into the model's labels on its own; say which with --train-as "
        f"{target}:{found[0]} (spans the base model already gives another of them keep it)"
    )
