"""Label maps: put two models' label schemas onto one.

Syntax (as in the seed): `ORG:ORGANISATION,PERSON,DATE` — `A:B` renames the model's label A to
B, a bare `B` keeps B, several sources may share a target (`GPE:LOCATION,LOC:LOCATION`), and any
label not named is dropped. A source the pipeline never produces is an error (a typo would
otherwise drop that label's entities without a word), unless it is marked optional with a
trailing `?` (`FAC?:LOCATION`): for one map shared by pipelines with different labels.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from .errors import DisagreeError
from .spans import SpanKey


@dataclass(frozen=True)
class LabelMap:
    """Source label -> target label. `None` mapping means "keep every label as it is".

    >>> m = LabelMap.parse("ORG:ORGANISATION,PERSON")
    >>> m("ORG"), m("PERSON"), m("GPE")
    ('ORGANISATION', 'PERSON', None)
    """

    mapping: Mapping[str, str] | None
    optional: frozenset[str] = frozenset()  # sources marked `X?`: a pipeline may lack them

    @classmethod
    def keep_all(cls) -> LabelMap:
        return cls(None)

    @classmethod
    def parse(cls, spec: str | None, *, option: str = "--ner") -> LabelMap:
        if spec is None:
            return cls.keep_all()
        mapping: dict[str, str] = {}
        optional: set[str] = set()
        items = spec.split(",")
        for item in items:
            entry = item.strip()
            if not entry:
                raise DisagreeError(
                    f"{option} {spec!r}: empty entry; write labels separated by single commas"
                )
            if entry.count(":") > 1:
                raise DisagreeError(
                    f"{option} {spec!r}: {entry!r} has more than one ':'; write SOURCE:TARGET"
                )
            source, colon, target = (part.strip() for part in entry.partition(":"))
            if source.endswith(OPTIONAL):
                source = source.removesuffix(OPTIONAL).strip()
                optional.add(source)
            if not colon:
                target = source
            if not source:
                raise DisagreeError(f"{option} {spec!r}: {entry!r} has no source label before ':'")
            if not target:
                raise DisagreeError(f"{option} {spec!r}: {entry!r} has no target label after ':'")
            if target.endswith(OPTIONAL):
                raise DisagreeError(
                    f"{option} {spec!r}: {entry!r}: '{OPTIONAL}' marks a source label optional; "
                    f"write it before the ':' ({source}{OPTIONAL}:{target.rstrip(OPTIONAL)})"
                )
            if source in mapping and mapping[source] != target:
                raise DisagreeError(
                    f"{option} {spec!r}: label {source!r} is mapped twice "
                    f"(to {mapping[source]!r} and to {target!r})"
                )
            mapping[source] = target
        return cls(MappingProxyType(mapping), frozenset(optional))

    def __call__(self, label: str) -> str | None:
        if self.mapping is None:
            return label
        return self.mapping.get(label)

    @property
    def sources(self) -> frozenset[str] | None:
        return None if self.mapping is None else frozenset(self.mapping)

    @property
    def targets(self) -> frozenset[str] | None:
        return None if self.mapping is None else frozenset(self.mapping.values())

    def map_scores(
        self, scores: Mapping[str, float], *, exclusive: bool
    ) -> tuple[dict[str, float], float]:
        """(score per target label, total score of the labels the map drops).

        Several sources on one target: for exclusive categories their probabilities add up (they
        are shares of one distribution); for independent ones the target takes the highest.

        >>> LabelMap.parse("POS:GOOD,VERYPOS:GOOD").map_scores(
        ...     {"POS": 0.25, "VERYPOS": 0.5, "NEG": 0.25}, exclusive=True)
        ({'GOOD': 0.75}, 0.25)
        """
        mapped: dict[str, float] = {}
        dropped = 0.0
        for label, score in scores.items():
            target = self(label)
            if target is None:
                dropped += score
            elif exclusive:
                mapped[target] = mapped.get(target, 0.0) + score
            else:
                mapped[target] = max(mapped.get(target, 0.0), score)
        return mapped, dropped

    def unknown_sources(self, known: Iterable[str]) -> list[str]:
        """Source labels that a model producing `known` labels can never emit."""
        if self.mapping is None:
            return []
        known_set = set(known)
        return sorted(s for s in self.mapping if s not in known_set)

    def check_sources(self, produced: Sequence[str], option: str = "--ner") -> None:
        """Refuse, with "did you mean" and the labels the pipeline does produce, a map that names
        a source label outside `produced` and not marked optional (nothing is refused when the
        pipeline does not say what it produces).

        >>> try:
        ...     LabelMap.parse("ORG:ORGANISATION,PERSN").check_sources(["ORG", "PERSON"])
        ... except DisagreeError as err:
        ...     print(str(err).replace("; ", ";\\n").replace(". ", ".\\n"))
        --ner names PERSN, which the pipeline never produces;
        did you mean PERSN → PERSON? It produces: ORG, PERSON.
        (A label that only another pipeline produces can be marked optional: PERSN?)
        """
        if not produced:
            return
        unknown = [s for s in self.unknown_sources(produced) if s not in self.optional]
        if not unknown:
            return
        guesses = [f"{label} → {guess}" for label in unknown if (guess := closest(label, produced))]
        hint = f"; did you mean {', '.join(guesses)}?" if guesses else "."
        assert self.mapping is not None  # a map that keeps all has no unknown label
        if len(unknown) == len(self.mapping):
            what = "none of which the pipeline produces, so nothing would be kept"
        else:
            what = "which the pipeline never produces"
        raise DisagreeError(
            f"{option} names {', '.join(unknown)}, {what}{hint} It produces: "
            f"{', '.join(produced)}. (A label that only another pipeline produces can "
            f"be marked optional: {unknown[0]}{OPTIONAL})"
        )

    def __str__(self) -> str:
        if self.mapping is None:
            return "(all labels kept)"
        return ",".join(
            (f"{s}{OPTIONAL}" if s in self.optional else s) + ("" if s == t else f":{t}")
            for s, t in self.mapping.items()
        )


OPTIONAL = "?"  # `FAC?:LOCATION`: the source may be missing from a pipeline's labels


def closest(label: str, produced: Sequence[str]) -> str | None:
    """The produced label a typo most likely meant: the same but for case, one that starts
    the other (ORG for ORGANIZATION), else the closest spelling.

    >>> closest("organization", ["ORG", "PERSON"]), closest("PESRON", ["ORG", "PERSON"])
    ('ORG', 'PERSON')
    """
    upper = {p.upper(): p for p in produced}
    wanted = label.upper()
    if wanted in upper:
        return upper[wanted]
    for key, original in upper.items():
        if len(key) >= 3 and (wanted.startswith(key) or key.startswith(wanted)):
            return original
    close = difflib.get_close_matches(wanted, list(upper), n=1, cutoff=0.6)
    return upper[close[0]] if close else None


def mapped_probabilities(
    probabilities: dict[SpanKey, float], label_map: LabelMap
) -> dict[SpanKey, float]:
    """The probabilities under the map's labels. Two source labels mapped to one target on the
    same span add up: a parse holds at most one entity on a span, so the events are disjoint."""
    mapped: dict[SpanKey, float] = defaultdict(float)
    for (start, end, label), p in probabilities.items():
        target = label_map(label)
        if target is not None:
            mapped[(start, end, target)] += p
    return {key: min(p, 1.0) for key, p in mapped.items()}
