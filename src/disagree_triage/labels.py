"""Label maps: put two models' label schemas onto one.

Syntax (as in the seed): `ORG:ORGANISATION,PERSON,DATE` — `A:B` renames the model's label A to
B, a bare `B` keeps B, several sources may share a target (`GPE:LOCATION,LOC:LOCATION`), and any
label not named is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from .errors import DisagreeError


@dataclass(frozen=True)
class LabelMap:
    """Source label -> target label. `None` mapping means "keep every label as it is".

    >>> m = LabelMap.parse("ORG:ORGANISATION,PERSON")
    >>> m("ORG"), m("PERSON"), m("GPE")
    ('ORGANISATION', 'PERSON', None)
    """

    mapping: Mapping[str, str] | None

    @classmethod
    def keep_all(cls) -> LabelMap:
        return cls(None)

    @classmethod
    def parse(cls, spec: str | None, *, option: str = "--ner") -> LabelMap:
        if spec is None:
            return cls.keep_all()
        mapping: dict[str, str] = {}
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
            source, _, target = entry.partition(":") if ":" in entry else (entry, "", entry)
            source, target = source.strip(), target.strip()
            if not source:
                raise DisagreeError(f"{option} {spec!r}: {entry!r} has no source label before ':'")
            if not target:
                raise DisagreeError(f"{option} {spec!r}: {entry!r} has no target label after ':'")
            if source in mapping and mapping[source] != target:
                raise DisagreeError(
                    f"{option} {spec!r}: label {source!r} is mapped twice "
                    f"(to {mapping[source]!r} and to {target!r})"
                )
            mapping[source] = target
        return cls(MappingProxyType(mapping))

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

    def __str__(self) -> str:
        if self.mapping is None:
            return "(all labels kept)"
        return ",".join(s if s == t else f"{s}:{t}" for s, t in self.mapping.items())
