"""What each model voted on a choice task (categories), and the score vectors behind it.

A choice task (what `textcat.manual` shows and `predict --textcat` writes):

    {"text": "...", "options": [{"id": "COOKING", "text": "COOKING"}, ...],
     "accept": ["COOKING"], "cats": {"COOKING": 0.91, "NEWS": 0.09},
     "config": {"choice_style": "single"}, "_view_id": "choice", "answer": "accept", ...}

`accept` holds the chosen option ids; `cats` keeps every category's score (spaCy's `doc.cats`,
after the label map) so probability-based scorers can use it. Prodigy exports have no `cats`:
there the accepted options count as 1 and the others as 0. `config.choice_style` is Prodigy's
own switch between one answer ("single", its default) and several ("multiple"), read by
`prodigy.choice`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from ..core.labels import LabelMap
from ..prodigy.choice import accepts_one, option_ids

if TYPE_CHECKING:
    from ..prodigy.read import ProdigyTask

NO_CATEGORY = ""  # the "none of them" outcome of an exclusive vote, as a label


class CategoryVote(NamedTuple):
    """One model's answer to one choice task."""

    accept: frozenset[str]
    scores: dict[str, float]  # every category the model scored; from `accept` when no `cats`
    exclusive: bool  # one category per text (softmax / single choice) or several (multilabel)

    @property
    def top(self) -> str:
        """The highest-scoring category (ties: the accepted one, then by name); NO_CATEGORY
        when nothing scores above 0."""
        if not self.scores or max(self.scores.values()) <= 0:
            return NO_CATEGORY
        return min(self.scores, key=lambda c: (-self.scores[c], c not in self.accept, c))

    def mapped(self, label_map: LabelMap) -> CategoryVote:
        """The vote with its categories mapped, several sources on one target as predict maps
        them (`LabelMap.map_scores`).

        >>> vote = CategoryVote(frozenset({"POS"}), {"POS": 0.25, "VERYPOS": 0.5}, True)
        >>> vote.mapped(LabelMap.parse("POS:GOOD,VERYPOS:GOOD"))
        CategoryVote(accept=frozenset({'GOOD'}), scores={'GOOD': 0.75}, exclusive=True)
        """
        scores, _ = label_map.map_scores(self.scores, exclusive=self.exclusive)
        accept = frozenset(t for t in (label_map(a) for a in self.accept) if t is not None)
        return CategoryVote(accept, scores, self.exclusive)

    def distribution(self, labels: Sequence[str]) -> dict[str, float]:
        """Exclusive votes as a probability distribution over `labels` plus NO_CATEGORY, which
        takes the mass the model gave to no category here (labels the map dropped, or an LLM
        that answered none)."""
        p = {label: max(0.0, self.scores.get(label, 0.0)) for label in labels}
        total = sum(p.values())
        if total > 1.0:
            p = {label: value / total for label, value in p.items()}
            total = 1.0
        p[NO_CATEGORY] = 1.0 - total
        return p


def vote_of(task: ProdigyTask) -> CategoryVote:
    """What one model chose, with its scores where the task carries `cats`."""
    accept = frozenset(task.accept or ())
    record = task.record
    exclusive = accepts_one(task)
    cats = record.get("cats")
    if isinstance(cats, dict) and cats:
        scores = {
            str(label): float(value)
            for label, value in cats.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)
        }
        for label in accept:
            scores.setdefault(label, 1.0)
    else:
        scores = {label: float(label in accept) for label in [*option_ids(record), *accept]}
    return CategoryVote(accept, scores, exclusive)


def votes_of(tasks: Sequence[ProdigyTask | None]) -> list[CategoryVote]:
    """The votes of the models that have the text."""
    return [vote_of(task) for task in tasks if task is not None]


def _voted(vote: CategoryVote) -> str:
    has_scores = any(0 < v < 1 for v in vote.scores.values())
    if not vote.accept:
        return "—"
    return ", ".join(
        f"{label} {vote.scores.get(label, 1.0):.2f}" if has_scores else label
        for label in sorted(vote.accept)
    )


def describe_choice(tasks: Sequence[ProdigyTask | None], models: Sequence[str]) -> str:
    """E.g. `category conflict: spacy: COOKING 0.83 | llm: NEWS`."""
    present = [(name, vote_of(t)) for name, t in zip(models, tasks, strict=True) if t is not None]
    answered = [v.accept for _, v in present if v.accept]
    kind = (
        "no category from some models"
        if len(answered) < len(present) and all(a == answered[0] for a in answered)
        else "category conflict"
    )
    return f"{kind}: " + " | ".join(f"{name}: {_voted(vote)}" for name, vote in present)
