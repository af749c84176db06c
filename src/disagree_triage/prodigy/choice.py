"""Prodigy's choice tasks (what `textcat.manual` shows and `predict --textcat` writes): the
options offered, the accepted ids, and whether a text takes one category or several.

`config.choice_style` is Prodigy's own switch between one answer ("single", its default) and
several ("multiple").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .read import ProdigyTask


SINGLE, MULTIPLE = "single", "multiple"


def choice_style(record: dict[str, Any]) -> str | None:
    config = record.get("config")
    style = config.get("choice_style") if isinstance(config, dict) else None
    return style if style in (SINGLE, MULTIPLE) else None


def option_ids(record: dict[str, Any]) -> list[str]:
    options = record.get("options")
    if not isinstance(options, list):
        return []
    return [str(o["id"]) for o in options if isinstance(o, dict) and "id" in o]


def accepts_one(task: ProdigyTask) -> bool:
    """One category per text: the task does not say "multiple" (Prodigy's default is "single")
    and accepts at most one option (a "single" task with several accepted is read as several)."""
    return choice_style(task.record) != MULTIPLE and len(task.accept or ()) <= 1


def union_options(tasks: Sequence[ProdigyTask | None]) -> list[str]:
    """Every option any model offered, in the order the files give them."""
    seen: dict[str, None] = {}
    for task in tasks:
        if task is not None:
            seen.update(dict.fromkeys(option_ids(task.record)))
            seen.update(dict.fromkeys(task.accept or ()))
    return list(seen)


def exclusive(tasks: Sequence[ProdigyTask | None]) -> bool:
    """One category per text, unless some model's version allows or accepted several."""
    return all(accepts_one(task) for task in tasks if task is not None)
