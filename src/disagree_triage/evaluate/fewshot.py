"""Few-shot examples from annotated disagreements, written in the format of the task that will
read them, so that the prompt-feedback loop is one flag:

    disagree evaluate gold.jsonl out-spacy.jsonl out-llm.jsonl --write-examples fixes.json
    disagree predict configs/local.cfg corpus.jsonl out-llm.jsonl --examples fixes.json

Each example is a gold-corrected text: the annotated entities, and the LLM's own entities that
the annotator rejected. Formats, by the spacy-llm task named in the user's config
(`task_of`), or ours by default:

- `disagree.NER.v1` (and `disagree.SpanCat.v1`): `{"text", "spans": [{"text", "label"}]}` (the
  gold entities);
- `spacy.NER.v3` (and `spacy.SpanCat.v3`): `{"text", "spans": [{"text", "is_entity", "label",
  "reason"}]}`, the rejected entities as `is_entity: false`, so the chain-of-thought prompt
  shows the model its mistakes;
- `spacy.NER.v1` / `v2` (and `spacy.SpanCat.v1` / `v2`): `{"text", "entities": {"LABEL":
  ["text", ...]}}`.

For entities an LLM span is rejected when gold has no span in its place (where gold has one,
gold's label is the correction). Spans may carry several labels in one place, so for spans
(`overlapping`) every (start, end, label) of the LLM's that gold lacks is rejected.

The file's format follows its name: `.json` (a list), `.jsonl` (one per line), `.yml`/`.yaml`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import DisagreeError
from ..core.spans import SpanKey
from ..io.output_files import check_outputs, write_atomic

DEFAULT_TASK = "disagree.NER.v1"


@dataclass(frozen=True)
class CorrectedExample:
    """One annotated text where the models disagreed."""

    text: str
    gold: tuple[SpanKey, ...]
    rejected: tuple[SpanKey, ...]  # the LLM's spans that gold has neither as such nor in place

    @classmethod
    def of(
        cls, text: str, gold: set[SpanKey], llm: set[SpanKey], *, overlapping: bool = False
    ) -> CorrectedExample:
        boundaries = set() if overlapping else {(start, end) for start, end, _ in gold}
        rejected = [span for span in llm - gold if span[:2] not in boundaries]
        return cls(text, tuple(sorted(gold)), tuple(sorted(rejected)))


def _ours(example: CorrectedExample) -> dict[str, Any]:
    text = example.text
    return {
        "text": text,
        "spans": [{"text": text[s:e], "label": label} for s, e, label in example.gold],
    }


def _ner_v3(example: CorrectedExample) -> dict[str, Any]:
    text = example.text
    spans = [
        {
            "text": text[s:e],
            "is_entity": True,
            "label": label,
            "reason": f"is a {label} (annotated)",
        }
        for s, e, label in example.gold
    ]
    spans += [
        {
            "text": text[s:e],
            "is_entity": False,
            "label": label,
            "reason": f"is not a {label} here (an annotator rejected it)",
        }
        for s, e, label in example.rejected
    ]
    return {"text": text, "spans": spans}


def _ner_v2(example: CorrectedExample) -> dict[str, Any]:
    entities: dict[str, list[str]] = {}
    for s, e, label in example.gold:
        entities.setdefault(label, []).append(example.text[s:e])
    return {"text": example.text, "entities": entities}


EXAMPLE_FORMATS: dict[str, Callable[[CorrectedExample], dict[str, Any]]] = {
    "disagree.NER.v1": _ours,
    "spacy.NER.v3": _ner_v3,
    "spacy.NER.v2": _ner_v2,
    "spacy.NER.v1": _ner_v2,
    # spacy-llm's SpanCat tasks read the examples of its NER tasks of the same version
    # (SpanCatExample / SpanCatCoTExample), disagree.SpanCat.v1 those of disagree.NER.v1.
    "disagree.SpanCat.v1": _ours,
    "spacy.SpanCat.v3": _ner_v3,
    "spacy.SpanCat.v2": _ner_v2,
    "spacy.SpanCat.v1": _ner_v2,
}


def task_of(config_or_pipeline: str | Path) -> str:
    """The spacy-llm task a config file (or a saved pipeline's config.cfg) runs, by its
    registered name; examples are written for it."""
    from spacy import util  # spaCy is imported only when a config is read

    path = Path(config_or_pipeline)
    config_path = path / "config.cfg" if path.is_dir() else path
    if not config_path.is_file():
        raise DisagreeError(f"{path}: no such config file or pipeline directory")
    try:
        config = util.load_config(config_path, interpolate=False)
    except Exception as err:  # noqa: BLE001  (any parse failure is the user's file)
        raise DisagreeError(
            f"{config_path}: not a readable config ({type(err).__name__})"
        ) from None
    names = {
        str(component["task"].get("@llm_tasks"))
        for component in config.get("components", {}).values()
        if isinstance(component, dict) and isinstance(component.get("task"), dict)
    }
    if not names:
        raise DisagreeError(f"{config_path}: has no spacy-llm task to write examples for")
    if len(names) > 1:
        raise DisagreeError(f"{config_path}: runs several LLM tasks ({', '.join(sorted(names))})")
    name = names.pop()
    if name not in EXAMPLE_FORMATS:
        raise DisagreeError(
            f"{config_path}: its task {name} takes no examples that evaluate can write "
            f"(it writes for {', '.join(EXAMPLE_FORMATS)})"
        )
    return name


def write_examples_file(
    examples: Iterable[CorrectedExample],
    output: str | Path,
    *,
    task: str = DEFAULT_TASK,
    inputs: Iterable[str | Path] = (),
    overwrite: bool = False,
) -> int:
    """Write `examples` for `task`, in the file format the name of `output` says, whole or not
    at all; how many."""
    if task not in EXAMPLE_FORMATS:
        raise DisagreeError(f"no few-shot example format for the task {task}")
    check_outputs({"--write-examples": output}, list(inputs))
    records = [EXAMPLE_FORMATS[task](example) for example in examples]
    write_atomic(output, serialise(records, Path(output)), overwrite=overwrite)
    return len(records)


def check_examples_path(path: str | Path) -> None:
    """Refuse, before any work, a file name whose format spacy-llm cannot read."""
    if Path(path).suffix.lower() not in (".json", ".jsonl", ".yml", ".yaml"):
        raise DisagreeError(
            f"{path}: name the examples file .json, .jsonl or .yml, the formats spacy-llm's "
            "FewShotReader reads"
        )


def serialise(records: list[dict[str, Any]], path: Path) -> bytes:
    check_examples_path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        return (json.dumps(records, ensure_ascii=False, indent=1) + "\n").encode("utf-8")
    if suffix == ".jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
    import srsly  # only this output needs YAML

    return srsly.yaml_dumps(records).encode("utf-8")
