"""After an LLM component ran: did its answer fail, or not parse? Say so in the output task.

spacy-llm turns an answer its parser cannot read into "no entities", silently, and our
backends turn a request that failed after all retries into a marked answer (see `failures`).
predict keeps each LLM component's prompt and answer on the doc (spacy-llm's `save_io`) and
checks them here, so the task says why it has no spans, and the summary counts it per backend.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from spacy.language import Language
from spacy.tokens import Doc

from ..llm.failures import failure_reason
from ..llm.structured import read_json, read_ner_answer
from .spacy_llm import LLM_FACTORY, llm_classifies


@dataclass(frozen=True)
class LLMComponent:
    name: str
    labels: tuple[str, ...]
    backend: Any  # the spacy-llm model callable (ours have `.stats`)
    classifies: bool = False  # a TextCat task (answers are category names), else NER
    structured: bool = False  # one of our JSON-answer tasks (`structured_tasks`)

    @property
    def backend_name(self) -> str:
        stats = getattr(self.backend, "stats", None)
        if stats is not None:
            return f"{stats.backend}:{stats.model}"
        return type(self.backend).__name__


def llm_components(nlp: Language) -> list[LLMComponent]:
    """The enabled spacy-llm components, with I/O saving switched on so they can be checked."""
    found = []
    for name, pipe in nlp.pipeline:
        if nlp.get_pipe_meta(name).factory != LLM_FACTORY:
            continue
        # spacy-llm offers no public setter; `save_io` in the config sets this same attribute.
        pipe._save_io = True  # type: ignore[attr-defined]
        task = getattr(pipe, "_task", None)
        labels = tuple(getattr(task, "labels", ()) or ())
        structured = type(task).__module__.endswith("structured_tasks")
        found.append(
            LLMComponent(
                name, labels, getattr(pipe, "_model", None), llm_classifies(pipe), structured
            )
        )
    return found


def _answer_pattern(labels: Iterable[str]) -> re.Pattern[str]:
    names = "|".join(re.escape(label) for label in sorted(labels, key=len, reverse=True))
    # NER.v1/v2: "LABEL: a, b" per line; NER.v3: "1. text | True | LABEL | reason".
    return re.compile(
        rf"^\s*(?:{names})\s*:|\|\s*(?:True|False)\s*\|\s*(?:{names})\s*\|",
        re.IGNORECASE | re.MULTILINE,
    )


def answer_problem(response: str, labels: Iterable[str]) -> str | None:
    """Why an NER answer cannot be used, or None when it can (an explicit empty list is fine)."""
    reason = failure_reason(response)
    if reason is not None:
        return f"request failed: {reason}"
    if not response.strip():
        return "empty answer"
    labels = list(labels)
    if labels and not _answer_pattern(labels).search(response):
        snippet = " ".join(response.split())[:80]
        return f"unparseable answer: {snippet!r}"
    return None


def textcat_answer_problem(response: str, labels: Iterable[str]) -> str | None:
    """Why a TextCat answer cannot be used: spacy-llm reads it as comma-separated category
    names (case-insensitive), `POS` / `NEG` for one label, or `==NONE==`; anything else gives
    no category, silently."""
    reason = failure_reason(response)
    if reason is not None:
        return f"request failed: {reason}"
    if not response.strip():
        return "empty answer"
    known = {label.strip().lower() for label in labels} | {"pos", "neg", "==none=="}
    if any(part.strip().lower() in known for part in response.split(",")):
        return None
    snippet = " ".join(response.split())[:80]
    return f"unparseable answer: {snippet!r}"


def json_answer_problem(response: str, labels: Iterable[str]) -> str | None:
    """Why a JSON NER answer (disagree.NER.v1) cannot be used, or None when it can. An
    answer cut short whose complete entities were kept is still reported."""
    reason = failure_reason(response)
    if reason is not None:
        return f"request failed: {reason}"
    return read_ner_answer(response).problem


def json_textcat_problem(response: str, labels: Iterable[str]) -> str | None:
    """Why a JSON TextCat answer (disagree.TextCat.v1) cannot be used, or None."""
    reason = failure_reason(response)
    if reason is not None:
        return f"request failed: {reason}"
    answer = read_json(response)
    if answer.value is None:
        return answer.problem
    if not isinstance(answer.value, dict) or not {"category", "categories"} & set(answer.value):
        return f"JSON answer without a category: {' '.join(response.split())[:80]!r}"
    return None


_CHECKS = {
    (False, False): answer_problem,
    (True, False): textcat_answer_problem,
    (False, True): json_answer_problem,
    (True, True): json_textcat_problem,
}


def check_doc(doc: Doc, component: LLMComponent) -> tuple[str | None, dict[str, Any] | None]:
    """(problem, io) for one doc: io is {"prompt", "response"} as spacy-llm saved them."""
    io = (doc.user_data.get("llm_io") or {}).get(component.name)
    if not io:
        return None, None
    responses = io.get("response")
    responses = responses if isinstance(responses, list) else [responses]
    check = _CHECKS[component.classifies, component.structured]
    for response in responses:
        problem = check(str(response), component.labels)
        if problem is not None:
            return problem, dict(io)
    return None, dict(io)
