"""An annotated Argilla 2.x dataset folder (`dataset.to_disk(FOLDER)`) as gold.

The folder `diff --format argilla` writes (exports/argilla.py), loaded into a server,
annotated, and written back with the SDK's `Dataset.to_disk`: `.argilla/settings.json` says
which question and field there are, `records.json` holds each record's `responses`:

    {"id": "-739109605", "fields": {"text": "Apple hired Zoë."}, "status": "completed",
     "responses": {"label": [{"value": [{"start": 0, "end": 5, "label": "ORG"}],
                              "user_id": "3f1c...", "status": "submitted"}]},
     "suggestions": {...}, "metadata": {...}, "vectors": {}, "_server_id": "..."}

A SpanQuestion's value is the list of spans `{start, end, label}`; a LabelQuestion's one
label; a MultiLabelQuestion's a list of labels. The question read is the one named `label`
(as diff writes it), else the dataset's only span, label or multi-label question.

Which responses are gold: only submitted ones (a draft or a discarded response is not). The
argilla SDK up to at least 2.8.0 writes a response without its `status` (`{"value",
"user_id"}` only, `RecordResponses.to_dict`); the record's own `status` then decides: the
server marks a record `completed` once it has its submitted responses (`min_submitted` of the
dataset's distribution), so the responses of a `completed` record are taken as submitted and
those of a `pending` one (drafts, discards) are not. Where that leaves several responses that
differ and no `status` to tell the submitted one, the folder is refused rather than guessed.
Several submitted responses (annotators): the first one in the file is the gold, as for a text
annotated twice in Prodigy.

Offsets are code points, as Python counts them: what the server checks spans against and what
the SDK writes (see exports/argilla.py); a span beyond the text is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..core.errors import DisagreeError, InputError, RecordError
from ..core.kinds import TaskKind
from ..core.spans import SpanKey
from .accepted import accepted_record, array_of, integer, label_of, load_json, text_of
from .argilla import CONFIG_DIR, FIELD, QUESTION, RECORDS, SETTINGS

_KINDS = {
    "span": TaskKind.NER,
    "label_selection": TaskKind.CHOICE,
    "multi_label_selection": TaskKind.CHOICE,
}
SUBMITTED = "submitted"
_STATUSES = (SUBMITTED, "draft", "discarded")


def is_dataset_folder(path: str | Path) -> bool:
    """Whether `path` is an Argilla dataset folder (it has `.argilla/settings.json`), or the
    `records.json` inside one."""
    return dataset_folder(path) is not None


def dataset_folder(path: str | Path) -> Path | None:
    p = Path(path)
    if p.is_file() and p.name == RECORDS:
        p = p.parent
    return p if (p / CONFIG_DIR / SETTINGS).is_file() else None


def argilla_records(path: str | Path, stats: Any) -> Iterator[dict[str, Any]]:
    """The accepted Prodigy records of an annotated Argilla dataset folder, one per record
    with a submitted response."""
    folder = dataset_folder(path)
    if folder is None:
        raise DisagreeError(
            f"{path}: not an Argilla dataset folder (no {CONFIG_DIR}/{SETTINGS}); give the "
            "folder that dataset.to_disk(FOLDER) wrote"
        )
    settings_path = folder / CONFIG_DIR / SETTINGS
    try:
        question, kind, field, multiple = _question(load_json(settings_path))
    except RecordError as err:
        raise InputError(settings_path, None, err.problem, field=err.field) from None
    records_path = folder / RECORDS
    if not records_path.is_file():
        raise DisagreeError(
            f"{records_path}: not found; the dataset was written without its records "
            "(to_disk(..., with_records=False)?)"
        )
    records = load_json(records_path)
    if not isinstance(records, list):
        raise InputError(records_path, None, "expected a JSON array of records (Argilla's to_disk)")
    for i, record in enumerate(records):
        stats.tasks += 1
        try:
            converted = _record(record, f"[{i}]", question, kind, field, multiple)
        except RecordError as err:
            raise InputError(records_path, None, err.problem, field=err.field) from None
        if converted is None:
            stats.unannotated += 1
            continue
        stats.annotated += 1
        yield converted


def _question(settings: Any) -> tuple[str, TaskKind, str, bool]:
    """(question name, its kind, the text field's name, whether several labels are allowed)."""
    if not isinstance(settings, dict):
        raise RecordError("expected an object (Argilla's Settings)")
    questions = array_of(settings.get("questions"), "questions")
    usable = [
        q for q in questions
        if isinstance(q, dict) and isinstance(q.get("settings"), dict)
        and q["settings"].get("type") in _KINDS
    ]  # fmt: skip
    named = [q for q in usable if q.get("name") == QUESTION]
    if named:
        chosen = named[0]
    elif len(usable) == 1:
        chosen = usable[0]
    else:
        found = ", ".join(str(q.get("name")) for q in usable) or "none"
        raise RecordError(
            f"expected a question named {QUESTION!r}, or one span, label or multi-label question "
            f"(found {found})",
            field="questions",
        )
    name = label_of(chosen.get("name"), "questions.name")
    question_type = chosen["settings"]["type"]
    field = chosen["settings"].get("field") or FIELD  # a span question names its field
    fields = [
        f.get("name") for f in array_of(settings.get("fields"), "fields") if isinstance(f, dict)
    ]
    if field not in fields:
        if len(fields) != 1:
            raise RecordError(f"no text field {field!r} (fields: {fields})", field="fields")
        field = fields[0]
    return name, _KINDS[question_type], str(field), question_type == "multi_label_selection"


def _record(
    record: Any, where: str, question: str, kind: TaskKind, field: str, multiple: bool
) -> dict[str, Any] | None:
    if not isinstance(record, dict):
        raise RecordError("expected an object (a record)", field=where)
    fields = record.get("fields")
    if not isinstance(fields, dict):
        raise RecordError("expected an object", field=f"{where}.fields")
    text = text_of(fields.get(field), f"{where}.fields.{field}")
    responses = record.get("responses") or {}
    if not isinstance(responses, dict):
        raise RecordError(
            "expected an object (question name: responses)", field=f"{where}.responses"
        )
    here = f"{where}.responses.{question}"
    answers = array_of(responses.get(question) or [], here)
    chosen = _submitted(answers, record.get("status"), here)
    if chosen is None:
        return None
    j, response = chosen
    value = response.get("value")
    here = f"{here}[{j}].value"
    answer: list[Any]
    if kind is TaskKind.NER:
        answer = _spans(value, text, here)
    elif isinstance(value, str) and not multiple:
        answer = [label_of(value, here)]
    else:
        answer = [label_of(c, f"{here}[{n}]") for n, c in enumerate(array_of(value, here))]
    meta = {"argilla_id": record.get("id")}
    return accepted_record(kind, text, answer, meta, response.get("user_id"))


def _submitted(
    answers: list[Any], record_status: Any, where: str
) -> tuple[int, dict[str, Any]] | None:
    """(index, response) of the first submitted response; None when there is none."""
    unknown = []
    for j, response in enumerate(answers):
        if not isinstance(response, dict):
            raise RecordError("expected an object (a response)", field=f"{where}[{j}]")
        if "status" not in response or response["status"] is None:
            unknown.append((j, response))
            continue
        status = response["status"]
        if status not in _STATUSES:
            raise RecordError(
                f"expected one of {', '.join(_STATUSES)}, got {status!r}",
                field=f"{where}[{j}].status",
            )
        if status == SUBMITTED:
            return j, response
    if not unknown or record_status != "completed":
        return None  # only drafts and discards, or a pending record: nothing submitted
    values = {repr(response.get("value")) for _, response in unknown}
    if len(values) > 1:
        raise RecordError(
            f"{len(unknown)} responses that differ and no 'status' to tell the submitted one "
            "(argilla's to_disk leaves it out); keep one annotator's responses",
            field=where,
        )
    return unknown[0]


def _spans(value: Any, text: str, where: str) -> list[SpanKey]:
    spans: list[SpanKey] = []
    for n, span in enumerate(array_of(value, where)):
        here = f"{where}[{n}]"
        if not isinstance(span, dict):
            raise RecordError("expected an object with start, end and label", field=here)
        start = integer(span.get("start"), f"{here}.start")
        end = integer(span.get("end"), f"{here}.end")
        if not 0 <= start < end <= len(text):
            raise RecordError(
                f"offsets {start}-{end} do not fit a text of {len(text)} characters (code points)",
                field=here,
            )
        spans.append((start, end, label_of(span.get("label"), f"{here}.label")))
    return spans


__all__ = ["argilla_records", "dataset_folder", "is_dataset_folder"]
