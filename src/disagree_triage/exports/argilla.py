"""Argilla 2.x: the queue as the dataset folder that the SDK's `Dataset.to_disk` writes and
`rg.Dataset.from_disk(FOLDER)` loads into a server.

    FOLDER/.argilla/dataset.json    the dataset model: its name (the folder's), status "draft"
    FOLDER/.argilla/settings.json   a TextField "text"; a SpanQuestion "label" over it with every
                                    label (categories: a LabelQuestion, or a MultiLabelQuestion
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
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ..categories import union_options
from ..errors import DisagreeError
from ..jsonl import JsonArrayWriter, JsonlWriter
from ..kinds import TaskKind
from ..prefill import prefilled_answer
from ..prodigy.write import exclusive
from .base import QueueFormat, flat_fields, input_meta, queue_formats, rank_first

if TYPE_CHECKING:
    from ..prodigy import ProdigyTask
    from ..scoring import ScoredExample

FIELD, QUESTION = "text", "label"  # the names the settings and the records share
CONFIG_DIR = ".argilla"  # what the SDK's DiskImportExportMixin reads
RECORDS, SETTINGS, DATASET = "records.json", "settings.json", "dataset.json"
TERMS = ("scorer", "target", "likely_wrong", "llm_failed")  # string fields worth filtering on
_RANK_PREFIX = b'{"metadata":{"rank":'
_NULLS = {"id": None, "inserted_at": None, "updated_at": None}  # what a new resource has


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
                "allow_overlapping": False,
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
            "guidelines": GUIDELINES[self.scoring.kind is TaskKind.CHOICE],
            "questions": [question],
            "fields": [field],
            "vectors": [],
            "metadata": metadata,
            "allow_extra_metadata": True,
            "distribution": {"strategy": "overlap", "min_submitted": 1},
            "mapping": None,
        }


GUIDELINES = {
    False: "Models disagree on these texts, the most disagreement first (metadata rank). The "
    "suggestion is what the models agree on; each model's own answer is in the metadata "
    "(model_NAME). Mark every entity.",
    True: "Models disagree on these texts, the most disagreement first (metadata rank). The "
    "suggestion is what the models agree on; each model's own answer is in the metadata "
    "(model_NAME). Choose the right category.",
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
