"""convert: an annotated export (Prodigy, Label Studio, doccano, Argilla, a DocBin) as a `.spacy`
file for training.

    >>> from disagree_triage.convert import convert_file
    >>> summary = convert_file(  # doctest: +SKIP
    ...     "export.json", "train.spacy", labels="ORG:ORGANISATION,PERSON")
    >>> summary.docbin.docs  # doctest: +SKIP

Only accepted answers become Docs (a Prodigy `reject` / `ignore` does not; a Label Studio task
without an annotation does not, see formats/annotations.py); a text annotated twice is kept
once, its first version. A Prodigy record without `answer` was never annotated (a queue as
`diff` wrote it: its spans are a model's): it is left out, and a file of nothing else refused,
unless `include_unannotated` (`--include-unannotated`) converts such records as they are.
`labels` is predict's label map (`ORG:ORGANISATION,PERSON`: rename ORG, keep PERSON, drop the
rest), for entities, spans or categories. Entities go to `doc.ents`, spans (`spans_manual`
tasks) to `doc.spans[spans_key]` ("sc" by default, what spancat trains on). How spans meet
tokens: formats/docbin.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .core.errors import DisagreeError, InputError, RecordError
from .core.kinds import TaskKind
from .core.labels import LabelMap
from .formats.annotations import (
    AUTO,
    LABELSTUDIO,
    ImportStats,
    read_annotations,
    resolve_format,
    split_format,
)
from .formats.docbin import DEFAULT_LANG, DEFAULT_SPANS_KEY, SUFFIX, DocBinSummary, DocBinWriter
from .io.corpus import rereads
from .io.output_files import check_file_output
from .prodigy import ProdigyTask


@dataclass
class ConvertSummary:
    input: str
    output: str
    format: str
    kind: TaskKind
    read: int = 0  # records (or tasks) read
    not_accepted: int = 0  # reject / ignore answers: left out
    unannotated: int = 0  # Prodigy records without 'answer': left out unless included
    include_unannotated: bool = False
    duplicates: int = 0  # a text seen again: its first version kept
    imported: ImportStats | None = None
    docbin: DocBinSummary = field(default_factory=lambda: DocBinSummary(""))

    def warnings(self) -> list[str]:
        said = []
        if self.imported is not None and self.imported.describe():
            said.append(str(self.imported.describe()))
        if self.unannotated:
            said.append(
                f"{self.unannotated:,} of {self.read:,} records have no 'answer' (never "
                "annotated: their spans are a model's): "
                + (
                    "converted as they are (--include-unannotated)"
                    if self.include_unannotated
                    else "left out; --include-unannotated converts them as they are"
                )
            )
        if self.duplicates:
            said.append(f"{self.duplicates:,} texts annotated more than once: the first kept")
        return said + self.docbin.warnings()


@rereads("input_path")
def convert_file(
    input_path: str | Path,
    output: str | Path,
    *,
    input_format: str = AUTO,
    labels: str | None = None,
    lang: str = DEFAULT_LANG,
    overwrite: bool = False,
    include_unannotated: bool = False,
    spans_key: str = DEFAULT_SPANS_KEY,
) -> ConvertSummary:
    """Write the accepted annotations of `input_path` to `output` (`.spacy`), with the label
    map `labels` applied; the output appears whole or not at all. `include_unannotated`: take
    Prodigy records without an `answer` (a queue's predictions) as accepted; `spans_key`: the
    span group spans go to."""
    if Path(output).suffix != SUFFIX:
        raise DisagreeError(f"{output}: convert writes a spaCy DocBin; name it ….spacy")
    check_file_output("OUTPUT", output, [input_path], overwrite=overwrite)
    fmt = resolve_format(input_path, input_format)
    # A Label Studio export is one JSON document: its errors name no line.
    numbered = split_format(fmt)[0] != LABELSTUDIO
    label_map = LabelMap.parse(labels)
    imported = None if fmt == "prodigy" else ImportStats(str(input_path), fmt)
    tasks: list[ProdigyTask] = []
    seen: set[int] = set()
    summary = ConvertSummary(str(input_path), str(output), fmt, TaskKind.NER, imported=imported,
                             include_unannotated=include_unannotated)  # fmt: skip
    for task in read_annotations(input_path, fmt, stats=imported):
        summary.read += 1
        if tasks and task.kind is not tasks[0].kind:
            raise InputError(
                input_path,
                task.line if numbered else None,
                f"a {task.kind.value} task in a file of {tasks[0].kind.value} tasks (its first "
                "record); convert one kind of task per file",
            )
        if task.answer is None:  # only Prodigy's records lack one (other tools' readers accept)
            summary.unannotated += 1
            if not include_unannotated:
                continue
        elif task.answer != "accept":
            summary.not_accepted += 1
            continue
        if task.input_hash in seen:
            summary.duplicates += 1
            continue
        seen.add(task.input_hash)
        tasks.append(task)
    if summary.read and summary.unannotated == summary.read and not include_unannotated:
        raise DisagreeError(
            f"{input_path}: none of its {summary.read:,} records has an 'answer': a queue nobody "
            "annotated (its spans are a model's predictions); annotate it first, or pass "
            "--include-unannotated to convert the spans as they are"
        )
    if not tasks:
        raise DisagreeError(f"{input_path}: no accepted annotation to convert")
    summary.kind = tasks[0].kind
    categories: set[str] = set()
    if summary.kind is TaskKind.CHOICE:
        for task in tasks:  # every category of the file, so each Doc names its negatives
            offered = [o.get("id") for o in task.record.get("options") or () if isinstance(o, dict)]
            for category in [*(task.accept or ()), *map(str, offered)]:
                target = label_map(category)
                if target is not None:
                    categories.add(target)
    writer = DocBinWriter(output, lang=lang, label_map=label_map, categories=sorted(categories),
                          overwrite=overwrite, spans_key=spans_key)  # fmt: skip
    for task in tasks:
        try:
            writer.add(task)
        except RecordError as err:  # a text too long for spaCy
            line = task.line if numbered else None
            raise InputError(input_path, line, err.problem, field=err.field) from None
    writer.commit()
    summary.docbin = writer.summary
    return summary
