"""What predict knows of spacy-llm's components: their factory, whether one classifies, and
its warnings said in one line (`readable_llm_warnings`).
"""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from ..core.errors import DisagreeWarning, intercept_warnings

LLM_FACTORY = "llm"


# spacy-llm's warning when a task's few-shot examples name labels the task lacks (its stock
# NER and SpanCat tasks then leave those entities out of the prompt, and drop an example left
# with none). It is four sentences on several lines; we say the same in one.
_UNKNOWN_EXAMPLE_LABELS = re.compile(
    r"Examples contain labels that are not specified in the task configuration\. .*?"
    r"following labels: (\[.*?\])\. Labels in examples missing from the task "
    r"configuration: (\[.*?\])\.",
    re.DOTALL,
)


def example_labels_warning(message: str) -> str | None:
    """Our one line for spacy-llm's warning about examples with labels the task lacks (None
    for any other message).

    >>> line = example_labels_warning(
    ...     "Examples contain labels that are not specified in the task configuration. The "
    ...     "latter contains the following labels: ['ORG', 'PERSON']. Labels in examples "
    ...     "missing from the task configuration: ['DATE', 'GPE']. Please ensure ...")
    >>> print(line.replace("; ", ";\\n"))
    examples name DATE, GPE, which are not among the labels ORG, PERSON;
    their entities are left out of the prompt
    """
    match = _UNKNOWN_EXAMPLE_LABELS.search(message)
    if match is None:
        return None
    try:
        labels, missing = (ast.literal_eval(group) for group in match.groups())
    except (ValueError, SyntaxError):
        return None
    one = len(missing) == 1
    return (
        f"examples name {', '.join(map(str, missing))}, which {'is' if one else 'are'} not "
        f"among the labels {', '.join(map(str, labels))}; {'its' if one else 'their'} entities "
        "are left out of the prompt"
    )


@contextmanager
def readable_llm_warnings() -> Iterator[None]:
    """Raise spacy-llm's warnings that we can say in one line (`example_labels_warning`) as
    that line, a DisagreeWarning; every other warning passes on as it came."""

    def take(w: warnings.WarningMessage) -> bool:
        line = example_labels_warning(str(w.message))
        if line is None:
            return False
        warnings.warn(line, DisagreeWarning, stacklevel=2)
        return True

    with intercept_warnings(take):
        yield


def llm_classifies(pipe: object) -> bool:
    """Whether a spacy-llm component runs a TextCat task (else NER or another doc.ents task)."""
    task = getattr(pipe, "_task", None)
    return hasattr(task, "exclusive_classes") and hasattr(task, "use_binary")


def llm_spans_key(pipe: object) -> str | None:
    """The span group a spacy-llm component's SpanCat task writes (None: another task)."""
    key = getattr(getattr(pipe, "_task", None), "spans_key", None)
    return key if isinstance(key, str) else None
