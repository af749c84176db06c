"""Argilla 2.x: the queue as the dataset folder that the SDK's `Dataset.to_disk` writes and
`rg.Dataset.from_disk(FOLDER)` loads into a server.

    FOLDER/.argilla/dataset.json    the dataset model: its name (the folder's), status "draft"
    FOLDER/.argilla/settings.json   a TextField "text"; a SpanQuestion "label" over it with every
                                    label, `allow_overlapping` for spans (not for entities)
                                    (categories: a LabelQuestion, or a MultiLabelQuestion
                                    where a text may have several); metadata properties
    FOLDER/.disagree.json           our marker, with the hash of records.json as written: only
                                    such a folder, unchanged (not annotated), is replaced
    FOLDER/records.json             a JSON array of records, in rank order:

    {"metadata": {"rank": 1, "disagreement_score": 0.5, "scorer": "span_f1",
                  "likely_wrong": "llm", "differences": "label conflict: ...",
                  "model_spacy-md": "ORG: Apple [0:5]", "model_llm": "...", ...},
     "id": "-739109605", "fields": {"text": "..."},
     "suggestions": {"label": {"value": [{"start": 0, "end": 5, "label": "ORG"}],
                               "score": null, "agent": "disagree --prefill majority"}},
     "responses": {}, "vectors": {}, "status": "pending", "_server_id": null}

Argilla takes one suggestion per question: the prefilled version (`--prefill`, as in the
Prodigy queue) is the suggestion, its `agent` says which; every model's own version is in the
metadata (`model_NAME`), beside the scores. `rank` (integer) and every numeric score (float)
are declared metadata properties, so the UI sorts and filters on them; `likely_wrong`,
`llm_failed` and `scorer` are terms properties; the rest (the differences, the input's meta) is
extra metadata.
The record id is the input hash, so annotations exported later map back to the corpus.

The layout is written here with plain JSON (what `Settings.to_json`, `DatasetModel.model_dump`
and `records.to_json` write, read from argilla 2.8.0), not with the SDK: the SDK pulls in
`datasets`, pandas and pyarrow, and its classes cannot even be built without reaching a
server. tests/test_argilla.py reads what we write with the SDK's own classes.

Offsets: code points, as Python counts them. That is what the server checks spans against
(`end` within the text) and what the SDK hands back; Argilla's annotation UI counts a
browser's UTF-16 code units, so in the UI a span after an emoji is drawn shifted (argilla
issue #5729); the stored offsets stay right.

Read back, annotated (evaluate's gold, `diff --calibrate`, `convert`): an annotated Argilla 2.x
dataset folder (`dataset.to_disk(FOLDER)`) as gold.

The folder `diff --format argilla` writes (above), loaded into a server,
annotated, and written back with the SDK's `Dataset.to_disk`: `.argilla/settings.json` says
which question and field there are, `records.json` holds each record's `responses`:

    {"id": "-739109605", "fields": {"text": "Apple hired Zoë."}, "status": "completed",
     "responses": {"label": [{"value": [{"start": 0, "end": 5, "label": "ORG"}],
                              "user_id": "3f1c...", "status": "submitted"}]},
     "suggestions": {...}, "metadata": {...}, "vectors": {}, "_server_id": "..."}

A SpanQuestion's value is the list of spans `{start, end, label}` (spans where the question has
`allow_overlapping`, entities where not); a LabelQuestion's one label; a MultiLabelQuestion's
a list of labels. The question read is the one named `label`
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
the SDK writes (as the queue above is written); a span beyond the text is refused.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ..core.errors import DisagreeError, InputError, RecordError
from ..core.kinds import TaskKind
from ..core.spans import SpanKey
from ..io.jsonl import JsonArrayWriter, JsonlWriter
from ..prodigy.choice import exclusive, union_options
from .accepted import accepted_record, array_of, integer, label_of, load_json, text_of
from .prefill import prefilled_answer
from .queue_format import QueueFormat, flat_fields, input_meta, queue_formats, rank_first

FIELD, QUESTION = "text", "label"  # the names the settings and the records share
CONFIG_DIR = ".argilla"  # what the SDK's DiskImportExportMixin reads
RECORDS, SETTINGS, DATASET = "records.json", "settings.json", "dataset.json"
TERMS = ("scorer", "target", "likely_wrong", "llm_failed")  # string fields worth filtering on
_RANK_PREFIX = b'{"metadata":{"rank":'
_NULLS = {"id": None, "inserted_at": None, "updated_at": None}  # what a new resource has

if TYPE_CHECKING:
    from ..prodigy import ProdigyTask
    from ..triage.scoring import ScoredExample


class ArgillaDataset(QueueFormat):
    name = "argilla"
    suffix = ""  # --split-by-model writes a dataset folder per model
    tool_labels = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.options: dict[str, None] = {}  # every category offered, in order
        self.multiple = False  # some example allows several categories
        self.numbers: dict[str, None] = {}  # numeric metadata seen: float properties
        self.labels: list[str] = []  # set by write_companions, once every example is read

    def records(self, scored: ScoredExample) -> list[dict[str, Any]]:
        example = scored.example
        self.check_labels(example)
        text = example.text
        choice = self.scoring.kind is TaskKind.CHOICE
        # Details first (they win over the input's meta): numbers become float properties.
        metadata: dict[str, Any] = {"rank": 0}
        details = flat_fields(self.scoring.details(scored), {})
        for key, field in [*details.items(), *flat_fields({}, input_meta(example)).items()]:
            name = property_name(key)
            if name in metadata or field is None or field == "":
                continue
            if key in details and isinstance(field, (int, float)) and not isinstance(field, bool):
                field = float(field)  # a float property takes no integer, nor the reverse
                self.numbers[name] = None
            metadata[name] = field
        for name, task in zip(self.scoring.models, example.tasks, strict=True):
            version = "(no answer)" if task is None else _version(task, text, choice=choice)
            metadata.setdefault(property_name(f"model_{name}"), version)
        if choice:
            self.options.update(dict.fromkeys(union_options(example.tasks)))
            self.multiple = self.multiple or not exclusive(example.tasks)
        chosen = prefilled_answer(self.prefill, self.scoring.models, example, self.scoring.kind)
        suggestions: dict[str, Any] = {}
        if chosen:
            value: Any
            if choice:  # a list; `with_rank` makes it one label if no text takes several
                value = [str(c) for c in chosen]
            else:
                spans = [key for key in chosen if isinstance(key, tuple)]
                value = [{"start": s, "end": e, "label": label} for s, e, label in spans]
            agent = f"disagree --prefill {self.prefill}"
            suggestions[QUESTION] = {"value": value, "score": None, "agent": agent}
        return [
            {
                "metadata": metadata,
                "id": str(example.input_hash),
                "fields": {FIELD: text},
                "suggestions": suggestions,
                "responses": {},
                "vectors": {},
                "status": "pending",
                "_server_id": None,
            }
        ]

    def with_rank(self, line: bytes, rank: int) -> bytes:
        line = rank_first(_RANK_PREFIX, line, rank)
        if self.scoring.kind is not TaskKind.CHOICE or self.multiple:
            return line
        # Every example is read: no text takes several categories, so the question is a
        # LabelQuestion, whose suggestion is one label, not a list.
        record = orjson.loads(line)
        for suggestion in record["suggestions"].values():
            (suggestion["value"],) = suggestion["value"]
        return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)

    def check(self, path: str | Path, *, overwrite: bool) -> None:
        check_folder(path, overwrite=overwrite)

    def open(self, path: str | Path, *, overwrite: bool) -> JsonlWriter:
        return DatasetFolderWriter(path, self, overwrite=overwrite)

    def write_companions(
        self, paths: Mapping[str, Path], labels: Sequence[str], *, overwrite: bool
    ) -> None:
        # No extra files; the labels go into each folder's settings when it is committed.
        self.check_all_labels(labels)
        self.labels = list(labels)

    def settings(self) -> dict[str, Any]:
        """The settings.json of the dataset, as `rg.Settings.serialize()` has it."""
        if self.scoring.kind is TaskKind.CHOICE:
            # Every category offered, then any a model chose that no task offered.
            offered = list(dict.fromkeys([*self.options, *self.labels]))
            kind = "multi_label_selection" if self.multiple else "label_selection"
            question_settings: dict[str, Any] = {
                "type": kind,
                "options": _options(offered),
                "visible_options": _visible(offered),
            }
            if self.multiple:
                question_settings["options_order"] = "natural"
        else:
            kind = "span"
            question_settings = {
                "type": kind,
                # Spans may overlap (and read back as spans); entities never do.
                "allow_overlapping": self.scoring.kind is TaskKind.SPANS,
                "field": FIELD,
                "options": _options(self.labels),
                "visible_options": _visible(self.labels),
            }
        question = {
            **_NULLS,
            "name": QUESTION,
            "settings": question_settings,
            "title": QUESTION,
            "description": None,
            "required": True,
            "dataset_id": None,
            "type": kind,
        }
        field = {
            **_NULLS,
            "name": FIELD,
            "settings": {"type": "text", "use_markdown": False},
            "title": FIELD,
            "required": True,
            "description": None,
            "dataset_id": None,
            "type": "text",
        }
        metadata = [_property("rank", {"min": None, "max": None, "type": "integer"})]
        metadata += [
            _property(name, {"min": None, "max": None, "type": "float"}) for name in self.numbers
        ]
        metadata += [_property(name, {"type": "terms", "values": None}) for name in TERMS]
        return {
            "guidelines": GUIDELINES[self.scoring.kind],
            "questions": [question],
            "fields": [field],
            "vectors": [],
            "metadata": metadata,
            "allow_extra_metadata": True,
            "distribution": {"strategy": "overlap", "min_submitted": 1},
            "mapping": None,
        }


_GUIDE = (
    "Models disagree on these texts, the most disagreement first (metadata rank). The "
    "suggestion is what the models agree on; each model's own answer is in the metadata "
    "(model_NAME). "
)
GUIDELINES = {
    TaskKind.NER: _GUIDE + "Mark every entity.",
    TaskKind.SPANS: _GUIDE + "Mark every span; spans may overlap.",
    TaskKind.CHOICE: _GUIDE + "Choose the right category.",
}


def property_name(key: str) -> str:
    """`key` as Argilla names a metadata property: lower case letters, digits, `_` and `-`.

    >>> property_name("model_errors_spaCy md")
    'model_errors_spacy_md'
    """
    return re.sub(r"[^a-z0-9_-]", "_", key.lower())


def dataset_name(folder: Path) -> str:
    """The dataset's name, from its folder's: what Argilla allows (letters, digits, `-`, `_`,
    spaces; not first `-` or `_`), at most 200 characters."""
    name = re.sub(r"[^a-zA-Z0-9 _-]+", "-", folder.resolve().name).lstrip("-_ ")[:200]
    return name or "disagree-queue"


def _options(labels: Sequence[str]) -> list[dict[str, str]]:
    return [{"text": label, "value": label} for label in labels]


def _visible(labels: Sequence[str]) -> int | None:
    # What the SDK's question settings set when they are read: every label, from three on.
    return len(labels) if len(labels) >= 3 else None


def _property(name: str, settings: dict[str, Any]) -> dict[str, Any]:
    return {
        **_NULLS,
        "name": name,
        "settings": {"visible_for_annotators": True, **settings},
        "title": name,
        "visible_for_annotators": True,
        "dataset_id": None,
    }


def _version(task: ProdigyTask, text: str, *, choice: bool) -> str:
    """One model's answer in words, for the metadata panel: `ORG: Apple [0:5]; ...`."""
    if choice:
        return ", ".join(task.accept or ()) or "(none)"
    spans = [f"{label}: {text[start:end]} [{start}:{end}]" for start, end, label in task.span_keys]
    return "; ".join(spans) or "(none)"


def check_folder(path: str | Path, *, overwrite: bool) -> None:
    """Whether a dataset folder may be written at `path`: a new or empty folder, or with
    `overwrite` one that disagree wrote and nobody changed since (`written_by_us`: never any
    other folder, an annotated dataset least of all: it is replaced whole). Its `.partial`
    beside it must be free, empty, or what a killed run of disagree left."""
    if str(path) == "-":
        raise DisagreeError("--format argilla writes a dataset folder; --output needs its path")
    folder = Path(path)
    if not folder.parent.is_dir():
        raise DisagreeError(f"{folder.parent}: output directory does not exist")
    if folder.is_symlink():
        raise DisagreeError(f"{folder}: a symbolic link; --format argilla writes a folder: "
                            "name the folder itself, or a new one")  # fmt: skip
    if folder.exists() and not folder.is_dir():
        raise DisagreeError(f"{folder}: --format argilla writes a folder; this is a file")
    building = _building(folder)
    if os.path.lexists(building) and not _free(building, finished=False):
        raise DisagreeError(
            f"{building}: exists, and is not what a killed run of disagree leaves; it is not "
            "deleted: move it away or choose another folder"
        )
    if _free(folder, finished=True):
        return
    if not written_by_us(folder, finished=True):
        raise DisagreeError(
            f"{folder}: not empty and no Argilla dataset folder that disagree wrote (no "
            f"{MARKER}, or changed since: annotated?); it is not replaced, --overwrite or not: "
            "choose a new folder"
        )
    if not overwrite:
        raise DisagreeError(f"{folder}: already exists; pass --overwrite to replace it")


MARKER = ".disagree.json"  # {"written_by": "disagree", "records_sha256": ...}: see written_by_us
# Everything a dataset folder of ours holds, finished or being built.
_OURS = {MARKER, RECORDS, f"{RECORDS}.partial", CONFIG_DIR, f"{CONFIG_DIR}/{SETTINGS}",
         f"{CONFIG_DIR}/{DATASET}"}  # fmt: skip


def _building(folder: Path) -> Path:
    return folder.with_name(folder.name + ".partial")


def _free(folder: Path, *, finished: bool) -> bool:
    """Whether `folder` may be written (or removed) without asking: absent, an empty folder,
    or (not `finished`) one that a killed run of ours was building."""
    if not os.path.lexists(folder):
        return True
    if folder.is_symlink() or not folder.is_dir():
        return False
    return not any(folder.iterdir()) or (not finished and written_by_us(folder, finished=False))


def written_by_us(folder: Path, *, finished: bool) -> bool:
    """Whether `folder` holds only what disagree writes, its marker among it, and no link;
    `finished`: and records.json is as disagree wrote it (the marker's hash), so not annotated
    by the SDK's to_disk or changed by hand since. Only such a folder is replaced."""
    found = set()
    for root, folders, files in os.walk(folder):
        for name in [*folders, *files]:
            entry = Path(root, name)
            if entry.is_symlink():
                return False
            found.add(entry.relative_to(folder).as_posix())
    if not found <= _OURS or MARKER not in found:
        return False
    try:
        marker = orjson.loads((folder / MARKER).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return False
    if not isinstance(marker, dict) or marker.get("written_by") != "disagree":
        return False
    return not finished or marker.get("records_sha256") == _sha256(folder / RECORDS)


def _sha256(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


class DatasetFolderWriter(JsonArrayWriter):
    """The records into `FOLDER.partial/records.json` as a JSON array, then on `commit` the
    settings and the dataset model beside them and one rename of the folder: the dataset
    appears whole or not at all (a replaced one is moved aside first, then removed). The
    marker (`MARKER`) is written first, so that a killed run's `.partial` is known as ours."""

    def __init__(self, path: str | Path, queue_format: ArgillaDataset, *, overwrite: bool) -> None:
        check_folder(path, overwrite=overwrite)
        self.folder = Path(path)
        self.queue_format = queue_format
        self.building = _building(self.folder)
        if self.building.is_dir():  # checked: empty, or the debris of a killed run of ours
            shutil.rmtree(self.building)
        try:
            self.building.mkdir()  # made by this run, or an error
            (self.building / CONFIG_DIR).mkdir()
            (self.building / MARKER).write_bytes(orjson.dumps({"written_by": "disagree"}))
        except OSError as err:
            problem = err.strerror or err
            raise DisagreeError(f"{self.building}: cannot write it ({problem})") from None
        super().__init__(self.building / RECORDS, overwrite=False)

    def commit(self) -> None:
        super().commit()
        config = self.building / CONFIG_DIR
        settings = self.queue_format.settings()
        dataset = {
            **_NULLS,
            "name": dataset_name(self.folder),
            "status": "draft",
            "guidelines": None,
            "allow_extra_metadata": True,
            "distribution": None,
            "workspace_id": None,
            "last_activity_at": None,
        }
        (config / SETTINGS).write_bytes(orjson.dumps(settings))
        (config / DATASET).write_bytes(orjson.dumps(dataset))
        marker = {"written_by": "disagree", "records_sha256": _sha256(self.building / RECORDS)}
        (self.building / MARKER).write_bytes(orjson.dumps(marker))
        aside = None
        if self.folder.is_dir() and any(self.folder.iterdir()):
            check_folder(self.folder, overwrite=True)  # still ours, as when the run began
            aside = self.folder.with_name(f".{self.folder.name}.{secrets.token_hex(4)}.old")
            os.replace(self.folder, aside)
        os.replace(self.building, self.folder)  # onto a new or an empty folder
        if aside is not None:
            shutil.rmtree(aside)

    def discard(self) -> None:
        super().discard()
        shutil.rmtree(self.building, ignore_errors=True)


queue_formats.register(ArgillaDataset.name, func=ArgillaDataset)


# --- read back: the tool's annotated export as accepted Prodigy records ----------------

_KINDS = {
    "span": TaskKind.NER,  # spans where the question has allow_overlapping (see _question)
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
    kind = _KINDS[question_type]
    if kind is TaskKind.NER and chosen["settings"].get("allow_overlapping") is True:
        kind = TaskKind.SPANS  # SpanQuestion(allow_overlapping=True): what diff writes for spans
    return name, kind, str(field), question_type == "multi_label_selection"


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
    if kind.is_span_kind:
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
