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
on a Text named "text") is written beside them, `--labelstudio-config FILE`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import quoteattr

from ..categories import union_options
from ..jsonl import JsonArrayWriter, JsonlWriter
from ..kinds import TaskKind
from ..outputs import write_atomic
from ..prodigy.write import exclusive
from .base import QueueFormat, flat_fields, input_meta, queue_formats, rank_first

if TYPE_CHECKING:
    from ..prodigy import ProdigyTask
    from ..scoring import ScoredExample

CONFIG_OPTION = "--labelstudio-config"
CONFIG_SUFFIX = ".labelstudio.xml"
# The names the tasks and the config share: the control tag and the text it labels.
FROM_NAME, TO_NAME = "label", "text"
_RANK_PREFIX = b'{"data":{"rank":'


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
