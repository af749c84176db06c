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
