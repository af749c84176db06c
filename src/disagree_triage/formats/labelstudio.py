"""Label Studio: the queue as tasks to import, each model's answer as one of its predictions.

One task per queued example, in a JSON array (what Label Studio's import takes):

    {"data": {"rank": 1, "text": "...", "disagreement_score": 0.5, "scorer": "span_f1",
              "differences": "label conflict: ...", ...every scorer, the input's meta...},
     "predictions": [{"model_version": "spacy-md", "score": 0.93,
                      "result": [{"id": "m0_0", "from_name": "label", "to_name": "text",
                                  "type": "labels", "score": 0.93,
                                  "value": {"start": 0, "end": 5, "text": "Apple",
                                            "labels": ["ORG"]}}]},
                     {"model_version": "llm", ...}]}

`data` is flat so that the Data Manager sorts and filters on every field (`rank`, a scorer,
`likely_wrong`, the input's own meta). An annotator opens a task with one model's prediction
and corrects it; every model's answer stays beside it. A prediction's `score` is the model's
own confidence where its file gives one (the mean of its spans' `score` from
`predict --scores`; of its chosen categories' `cats`), and absent where it gives none: the
example's disagreement score is `data.disagreement_score`, never a model's confidence.
Label Studio counts `start`/`end` of a Text tag in Unicode code points, as Python does (since
label-studio-frontend#308 it converts the browser's UTF-16 offsets), so offsets go as they are.

The labelling config the tasks need (`<Labels>`, or `<Choices>` for categories, named "label"
on a Text named "text") is written beside them, `--labelstudio-config FILE`. A queue of spans
(`spans_manual`, which may overlap: Label Studio draws overlapping regions as they are) has the
same config and `data.view_id: "spans_manual"`, which comes back with the export.

Read back, annotated (evaluate's gold, `diff --calibrate`, `convert`): label Studio's exports
(Export → JSON or JSON-MIN, or `GET /api/projects/ID/export`) as gold.

JSON: the project's tasks, each with its `annotations`:

    [{"id": 7, "data": {"text": "..."},
      "annotations": [{"id": 3, "completed_by": 1, "was_cancelled": false,
                       "created_at": "2026-11-26T09:00:00.000000Z",
                       "result": [{"from_name": "label", "to_name": "text", "type": "labels",
                                   "value": {"start": 0, "end": 5, "text": "Apple",
                                             "labels": ["ORG"]}}]}],
      "predictions": [...]}]

The gold of a task is its latest annotation that was not cancelled ("skipped"), by
`created_at`, as Label Studio's own converter picks it; its `labels` regions are the entities,
its `choices` the categories (other result types, e.g. a TextArea, are ignored). A task
without such an annotation is not gold (counted, left out).

JSON-MIN: one flat object per annotation (newest first), the task's data fields at the top and
each control's answer under its name: `"label": [{"start", "end", "text", "labels"}]` for
`<Labels name="label">`, a string (one choice) or `{"choices": [...]}` for `<Choices>`; an
unannotated task has `"annotation_id": null`. The config `diff --format labelstudio` writes
(and Label Studio's own NER template) names the control `label` and the text `text`, which is
what is read here (`data.text` in JSON).

Offsets are Unicode code points, as in Python (as the queue above is written); every region's
`text` must be what its offsets cut from the task's text, or the export is refused: a
mismatch means offsets counted another way, and evaluating on them would be silently wrong.
A file holds one kind of task: spans or entities when any region is `labels` (spans where a
task's data has `view_id: spans_manual`, or as `--gold-format labelstudio:spans|ner` says, or
else where some annotation's regions overlap: `accepted.span_kind`), else categories.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import quoteattr

from ..core.errors import InputError, RecordError
from ..core.kinds import SPANS_VIEW_ID, TaskKind
from ..core.spans import SpanKey
from ..io.jsonl import JsonArrayWriter, JsonlWriter, describe_json_type
from ..io.output_files import write_atomic
from ..prodigy.choice import exclusive, union_options
from .accepted import (
    VIEW_FIELD,
    accepted_record,
    array_of,
    has_overlap,
    integer,
    label_of,
    load_json,
    span_kind,
    text_of,
)
from .queue_format import QueueFormat, flat_fields, input_meta, queue_formats, rank_first

CONFIG_OPTION = "--labelstudio-config"
CONFIG_SUFFIX = ".labelstudio.xml"
# The names the tasks and the config share: the control tag and the text it labels.
FROM_NAME, TO_NAME = "label", "text"
_RANK_PREFIX = b'{"data":{"rank":'

if TYPE_CHECKING:
    from ..prodigy import ProdigyTask
    from ..triage.scoring import ScoredExample


class LabelStudioTasks(QueueFormat):
    name = "labelstudio"
    suffix = ".json"
    companion_options = (CONFIG_OPTION,)
    tool_labels = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.options: dict[str, None] = {}  # every category offered, in order
        self.multiple = False  # some example allows several categories

    def records(self, scored: ScoredExample) -> list[dict[str, Any]]:
        example = scored.example
        self.check_labels(example)
        details = self.scoring.details(scored)
        data: dict[str, Any] = {"rank": 0, "text": example.text}
        if self.scoring.kind is TaskKind.SPANS:
            data[VIEW_FIELD] = SPANS_VIEW_ID  # comes back with the export: read as spans
        for key, value in flat_fields(details, input_meta(example)).items():
            data.setdefault(key, value)
        choice = self.scoring.kind is TaskKind.CHOICE
        if choice:
            self.options.update(dict.fromkeys(union_options(example.tasks)))
            self.multiple = self.multiple or not exclusive(example.tasks)
        predictions = [
            prediction(i, name, task, example.text, choice=choice)
            for i, (name, task) in enumerate(zip(self.scoring.models, example.tasks, strict=True))
            if task is not None
        ]
        return [{"data": data, "predictions": predictions}]

    def with_rank(self, line: bytes, rank: int) -> bytes:
        return rank_first(_RANK_PREFIX, line, rank)

    def open(self, path: str | Path, *, overwrite: bool) -> JsonlWriter:
        return JsonArrayWriter(path, overwrite=overwrite)

    def companions(
        self,
        output: str | Path | None,
        folder: str | Path | None,
        asked: Mapping[str, str | Path | None],
    ) -> dict[str, Path]:
        """The config goes where --labelstudio-config says, else beside the queue file
        (`ranked.json` -> `ranked.labelstudio.xml`), else into the --split-by-model folder;
        with the queue on stdout and no folder, only where asked."""
        super().companions(output, folder, asked)
        chosen = asked.get(CONFIG_OPTION)
        if chosen is not None:
            return {CONFIG_OPTION: Path(chosen)}
        if output is not None and str(output) != "-":
            path = Path(output)
            return {CONFIG_OPTION: path.with_name(path.stem + CONFIG_SUFFIX)}
        if folder is not None:
            return {CONFIG_OPTION: Path(folder) / "labelstudio.xml"}
        return {}

    def write_companions(
        self, paths: Mapping[str, Path], labels: Sequence[str], *, overwrite: bool
    ) -> None:
        path = paths.get(CONFIG_OPTION)
        if path is None:
            return
        self.check_all_labels(labels)  # those of agreements too: the config lists them
        if self.scoring.kind is TaskKind.CHOICE:
            # Every category offered, then any a model chose that no task offered.
            offered = list(dict.fromkeys([*self.options, *labels]))
            xml = labeling_config(offered, choices="multiple" if self.multiple else "single")
        else:
            xml = labeling_config(labels)
        write_atomic(path, xml.encode("utf-8"), overwrite=overwrite)


def prediction(
    index: int, name: str, task: ProdigyTask, text: str, *, choice: bool
) -> dict[str, Any]:
    """One model's version of an example as a Label Studio prediction, with the model's own
    confidence as its `score` where the model gave one (Label Studio takes none as well)."""
    result: list[dict[str, Any]] = []
    confidences: list[float] = []
    if choice:
        accepted = list(task.accept or ())
        if accepted:
            result.append(_region(f"m{index}_0", "choices", {"choices": accepted}))
        cats = task.record.get("cats")
        if isinstance(cats, dict):
            confidences = [
                float(cats[c]) for c in accepted if isinstance(cats.get(c), (int, float))
            ]
    else:
        beam = task.beam or {}
        for j, key in enumerate(task.span_keys):
            start, end, label = key
            value = {"start": start, "end": end, "text": text[start:end], "labels": [label]}
            region = _region(f"m{index}_{j}", "labels", value)
            if key in beam:
                region["score"] = beam[key]
                confidences.append(beam[key])
            result.append(region)
    found: dict[str, Any] = {"model_version": name}
    if confidences:
        found["score"] = round(sum(confidences) / len(confidences), 6)
    found["result"] = result
    return found


def _region(region_id: str, kind: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"id": region_id, "from_name": FROM_NAME, "to_name": TO_NAME, "type": kind,
            "value": value}  # fmt: skip


def labeling_config(labels: Sequence[str], *, choices: str | None = None) -> str:
    """The labelling config for the tasks: a `<Labels>` control over the text (entities), or
    with `choices` ("single" / "multiple") a `<Choices>` one (categories).

        >>> print(labeling_config(["ORG"]))
        <View>
          <Labels name="label" toName="text">
            <Label value="ORG"/>
          </Labels>
          <Text name="text" value="$text"/>
        </View>
        <BLANKLINE>
    """
    if choices is None:
        items = "".join(f"    <Label value={quoteattr(label)}/>\n" for label in labels)
        control = f'  <Labels name="{FROM_NAME}" toName="{TO_NAME}">\n{items}  </Labels>\n'
        body = control + f'  <Text name="{TO_NAME}" value="$text"/>\n'
    else:
        items = "".join(f"    <Choice value={quoteattr(label)}/>\n" for label in labels)
        body = (
            f'  <Text name="{TO_NAME}" value="$text"/>\n'
            f'  <Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="{choices}">\n'
            f"{items}  </Choices>\n"
        )
    return f"<View>\n{body}</View>\n"


queue_formats.register(LabelStudioTasks.name, func=LabelStudioTasks)


# --- read back: the tool's annotated export as accepted Prodigy records ----------------

_ANNOTATION_KEYS = ("annotations", "completions")  # `completions`: Label Studio before 1.0


def labelstudio_records(
    path: str | Path, stats: Any, *, kind: TaskKind | None = None
) -> Iterator[dict[str, Any]]:
    """The accepted Prodigy records of a Label Studio JSON or JSON-MIN export; `kind`: entities
    or spans, as the user asked (`--gold-format labelstudio:spans`), see `span_kind`."""
    tasks = load_json(path)
    if not isinstance(tasks, list):
        raise InputError(path, None, "expected a JSON array of tasks (a Label Studio export)")
    if not tasks:
        raise InputError(path, None, "holds no tasks (an empty array)")
    full = any(isinstance(t, dict) and isinstance(t.get("data"), dict) for t in tasks)
    try:
        if full:
            yield from _full_records(tasks, stats, kind)
        else:
            yield from _min_records(tasks, stats, kind)
    except RecordError as err:
        raise InputError(path, None, err.problem, field=err.field) from None


# --- JSON --------------------------------------------------------------------------------


def _results(
    task: Any, keys: Sequence[str] = (*_ANNOTATION_KEYS, "predictions")
) -> Iterator[list[dict[str, Any]]]:
    """The regions of each annotation and prediction (`keys`) of a task."""
    if not isinstance(task, dict):
        return
    for key in keys:
        items = task.get(key)
        for item in items if isinstance(items, list) else ():
            result = item.get("result") if isinstance(item, dict) else None
            if isinstance(result, list):
                yield [region for region in result if isinstance(region, dict)]


def _keys(regions: Sequence[Any]) -> list[SpanKey]:
    """The (start, end, label) of each well-formed `labels` value (the rest is checked when
    read), for telling whether spans overlap."""
    return [
        (value["start"], value["end"], label)
        for value in regions
        if isinstance(value, dict)
        and type(value.get("start")) is int
        and type(value.get("end")) is int
        and isinstance(value.get("labels"), list)
        for label in value["labels"]
        if isinstance(label, str)  # (sortable: a bad label is reported when read)
    ]


def _kind_of_full(tasks: list[Any], asked: TaskKind | None) -> TaskKind:
    results = [result for t in tasks for result in _results(t)]
    types = {r.get("type") for result in results for r in result}
    if "labels" not in types and "choices" in types:
        return TaskKind.CHOICE
    types.discard(None)
    if types and "labels" not in types:
        raise RecordError(
            f"no 'labels' or 'choices' region anywhere (found {', '.join(sorted(map(str, types)))})"
            "; disagree reads a Text labelled with <Labels> or <Choices>"
        )
    marked = any(
        isinstance(t, dict) and isinstance(t.get("data"), dict)
        and t["data"].get(VIEW_FIELD) == SPANS_VIEW_ID
        for t in tasks
    )  # fmt: skip
    overlapping = any(  # in an annotation: a model's predictions say nothing of the gold
        has_overlap(_keys([r.get("value") for r in result if r.get("type") == "labels"]))
        for t in tasks
        for result in _results(t, _ANNOTATION_KEYS)
    )
    return span_kind(f"data.{VIEW_FIELD}", marked=marked, asked=asked, overlapping=overlapping)


def _latest(annotations: list[Any], where: str) -> tuple[int, dict[str, Any]] | None:
    """(index, annotation) of the latest annotation that was not cancelled; None if none."""
    live = []
    for j, annotation in enumerate(annotations):
        if not isinstance(annotation, dict):
            raise RecordError("expected an object (an annotation)", field=f"{where}[{j}]")
        if annotation.get("was_cancelled") or annotation.get("skipped"):
            continue
        live.append((str(annotation.get("created_at") or ""), j, annotation))
    if not live:
        return None
    _, j, annotation = max(live, key=lambda item: (item[0], item[1]))
    return j, annotation


def _full_records(tasks: list[Any], stats: Any, asked: TaskKind | None) -> Iterator[dict[str, Any]]:
    kind = _kind_of_full(tasks, asked)
    for i, task in enumerate(tasks):
        where = f"[{i}]"
        if not isinstance(task, dict):
            raise RecordError("expected an object (a task)", field=where)
        stats.tasks += 1
        data = task.get("data")
        if not isinstance(data, dict):
            raise RecordError("expected an object", field=f"{where}.data")
        if TO_NAME not in data:
            raise RecordError(
                "missing (the text is read from data.text, the value $text of the <Text> tag)",
                field=f"{where}.data.{TO_NAME}",
            )
        text = text_of(data[TO_NAME], f"{where}.data.{TO_NAME}")
        key = next((k for k in _ANNOTATION_KEYS if k in task), _ANNOTATION_KEYS[0])
        annotations = array_of(task.get(key) or [], f"{where}.{key}")
        found = _latest(annotations, f"{where}.{key}")
        if found is None:
            stats.unannotated += 1
            continue
        j, annotation = found
        where = f"{where}.{key}[{j}].result"
        result = array_of(annotation.get("result") or [], where)
        answer: list[Any] = []
        for k, region in enumerate(result):
            here = f"{where}[{k}]"
            if not isinstance(region, dict):
                raise RecordError("expected an object (a region)", field=here)
            value = region.get("value")
            if region.get("type") == "labels" and kind.is_span_kind:
                answer += _spans(value, text, f"{here}.value")
            elif region.get("type") == "choices" and kind is TaskKind.CHOICE:
                answer += _choices(value, f"{here}.value")
        stats.annotated += 1
        meta = {"labelstudio_task": task.get("id"), "labelstudio_annotation": annotation.get("id")}
        yield accepted_record(kind, text, answer, meta, annotation.get("completed_by"))


def _spans(value: Any, text: str, where: str) -> list[SpanKey]:
    """The (start, end, label) keys of one `labels` region, its `text` checked."""
    if not isinstance(value, dict):
        raise RecordError("expected an object with start, end and labels", field=where)
    start = integer(value.get("start"), f"{where}.start")
    end = integer(value.get("end"), f"{where}.end")
    if not 0 <= start < end <= len(text):
        raise RecordError(
            f"offsets {start}-{end} do not fit a text of {len(text)} characters", field=where
        )
    said = value.get("text")
    if said is not None and said != text[start:end]:
        raise RecordError(
            f"offsets {start}-{end} cut {text[start:end]!r} from the task's text, not "
            f"{said!r}: offsets counted another way than in Unicode code points?",
            field=f"{where}.text",
        )
    labels = array_of(value.get("labels"), f"{where}.labels")
    return [(start, end, label_of(label, f"{where}.labels[{n}]")) for n, label in enumerate(labels)]


def _choices(value: Any, where: str) -> list[str]:
    if not isinstance(value, dict):
        raise RecordError("expected an object with choices", field=where)
    choices = array_of(value.get("choices"), f"{where}.choices")
    return [label_of(c, f"{where}.choices[{n}]") for n, c in enumerate(choices)]


# --- JSON-MIN ----------------------------------------------------------------------------


def _kind_of_min(records: list[Any], asked: TaskKind | None) -> TaskKind:
    for record in records:
        value = record.get(FROM_NAME) if isinstance(record, dict) else None
        if isinstance(value, list) and value:
            # A list of names: categories as doccano's JSON export of a text classification
            # project has them (Label Studio's own JSON-MIN never writes one).
            if isinstance(value[0], str):
                return TaskKind.CHOICE
            break
        if isinstance(value, (str, dict)):
            return TaskKind.CHOICE
    dicts = [r for r in records if isinstance(r, dict)]
    marked = any(r.get(VIEW_FIELD) == SPANS_VIEW_ID for r in dicts)
    overlapping = any(
        isinstance(r.get(FROM_NAME), list) and has_overlap(_keys(r[FROM_NAME])) for r in dicts
    )
    return span_kind(VIEW_FIELD, marked=marked, asked=asked, overlapping=overlapping)


def _min_records(
    records: list[Any], stats: Any, asked: TaskKind | None
) -> Iterator[dict[str, Any]]:
    kind = _kind_of_min(records, asked)
    # Several annotations of one task are several records: the latest one is its gold.
    latest: dict[Any, tuple[str, int]] = {}
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise RecordError("expected an object (a JSON-MIN record)", field=f"[{i}]")
        if _annotated(record):
            task = _task_id(record, i)
            key = (str(record.get("created_at") or ""), -i)  # ties: the first (newest) one
            if task not in latest or key > (latest[task][0], -latest[task][1]):
                latest[task] = (key[0], i)
    chosen = {i for _, i in latest.values()}
    seen_tasks: set[Any] = set()
    for i, record in enumerate(records):
        task = _task_id(record, i)
        if task not in seen_tasks:
            seen_tasks.add(task)
            stats.tasks += 1
        where = f"[{i}]"
        text = text_of(record.get(TO_NAME), f"{where}.{TO_NAME}")
        if i not in chosen:
            if task not in latest and not _annotated(record):
                stats.unannotated += 1
            continue
        value = record.get(FROM_NAME)
        here = f"{where}.{FROM_NAME}"
        answer: list[Any] = []
        if value is None:
            pass  # annotated, nothing highlighted or chosen
        elif kind.is_span_kind:
            for k, region in enumerate(array_of(value, here)):
                answer += _spans(region, text, f"{here}[{k}]")
        elif isinstance(value, str):
            answer = [label_of(value, here)]
        elif isinstance(value, list):
            answer = [label_of(c, f"{here}[{n}]") for n, c in enumerate(value)]
        else:
            answer = _choices(value, here)
        stats.annotated += 1
        meta = {"labelstudio_task": record.get("id"),
                "labelstudio_annotation": record.get("annotation_id")}  # fmt: skip
        yield accepted_record(kind, text, answer, meta, record.get("annotator"))


def _task_id(record: dict[str, Any], i: int) -> Any:
    """The task a JSON-MIN record annotates: its `id` (a record without one is a task of its
    own). The records of one task are grouped by it, so a list or an object is refused."""
    task = record.get("id", ("index", i))
    if isinstance(task, (list, dict)):
        raise RecordError(
            f"expected the task's id (a number or a string), got {describe_json_type(task)}",
            field=f"[{i}].id",
        )
    return task


def _annotated(record: dict[str, Any]) -> bool:
    """Whether a JSON-MIN record is an annotation: it has an annotation id, or an answer."""
    return record.get("annotation_id") is not None or FROM_NAME in record
