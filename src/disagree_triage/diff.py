"""diff: rank the examples of several models' prediction files by disagreement and write the
annotation queue.

    >>> from disagree_triage import diff_files
    >>> summary = diff_files(["out-spacy.jsonl", "out-llm.jsonl"],  # doctest: +SKIP
    ...                      output="ranked.jsonl", agreements="agree.jsonl")

Data flows one way: align (align.py) -> score (scoring.py, with compare.py and the scorers)
-> rank (here) -> write (the `--format`'s writer in exports/: Prodigy, Label Studio, doccano).
Ranking needs every score before the first line can be written, so each queued example's
records are spooled to a temporary file and only its sort key and offset stay in memory.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from .align import AlignedExample, FileStats, align_files, check_overlap
from .annotated_texts import AnnotatedTexts, read_annotated_texts
from .corpus import rereads
from .diversity import spread
from .docbin import DEFAULT_LANG, DocBinSummary, DocBinWriter, is_docbin_path
from .errors import DisagreeError, InputError, RecordError
from .evidence import Reliability
from .exports import get_queue_format
from .imports import AUTO, prodigy_file
from .jsonl import JsonlWriter, dumps_line
from .kinds import TaskKind
from .outputs import check_outputs
from .prefill import MAJORITY, PREFILLS
from .prodigy.write import agreement_task
from .scoring import (
    AGREEMENT,
    DEFAULT_MIN_CONFIDENCE,
    QUEUE_FAILED,
    FailedAnswers,
    QueuePolicy,
    ScoredExample,
    Scoring,
    queue_order,
    rank_key,
)

QUEUE = "queue"
_Entry = tuple[tuple[float, int, int], int, int]  # a queued example: (rank key, offset, length)


@dataclass
class DiffSummary:
    models: list[str]
    files: list[FileStats]
    scorer: str
    kind: TaskKind = TaskKind.NER
    total: int = 0
    agreeing: int = 0
    disagreeing: int = 0
    missing: int = 0
    queued: int = 0
    written: int = 0
    agreements_written: int = 0
    missing_by_model: Counter[str] = field(default_factory=Counter)
    missing_examples: list[tuple[str, str]] = field(default_factory=list)  # (models, text)
    by_conflict: Counter[str] = field(default_factory=Counter)
    by_label: Counter[str] = field(default_factory=Counter)
    target: str | None = None
    held_back: Counter[str] = field(default_factory=Counter)  # unsure agreements, by reason
    held_back_examples: list[str] = field(default_factory=list)  # the first reasons, in words
    calibration: Reliability | None = None
    annotated: int = 0  # examples of --calibrate's file left out of the queue
    excluded: int = 0  # examples of --exclude's files left out (not counted in `annotated`)
    exclusions: AnnotatedTexts | None = None  # what --exclude read
    split: dict[str, tuple[str, int]] = field(default_factory=dict)  # model -> (path, examples)
    shortened: list[str] = field(default_factory=list)  # models too long to name their file
    companions: dict[str, str] = field(default_factory=dict)  # option -> path written
    agreements_docbin: DocBinSummary | None = None  # --agreements X.spacy: what went in
    llm_failures: str = QUEUE_FAILED  # --llm-failures: what was done with them
    failed: FailedAnswers = field(default_factory=FailedAnswers)  # on a failed LLM answer
    ranked_by: str = ""  # Scoring.ranked_by, in words
    diversified: int = 0  # --diversify K: the top K of each queue spread over --vectors

    @property
    def texts_read(self) -> int:
        """Every text read, those left out as annotated (--calibrate, --exclude) too."""
        return self.total + self.annotated + self.excluded

    @property
    def label_gaps(self) -> dict[str, list[str]]:
        """Labels some models use and others never do: each such entity is a disagreement."""
        used = {f.name: f.labels for f in self.files}
        everything = set().union(*used.values())
        return {
            name: sorted(everything - labels)
            for name, labels in used.items()
            if everything - labels
        }


@rereads("paths", "calibrate", stdin=False)
def diff_files(
    paths: Sequence[str | Path],
    *,
    output: str | Path | None = "-",
    names: Sequence[str] | None = None,
    scorer: str | None = None,
    target: str | None = None,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    calibrate: str | Path | None = None,
    calibrate_format: str = AUTO,
    exclude: Sequence[str | Path] = (),
    split_by_model: str | Path | None = None,
    output_format: str = QUEUE,
    labelstudio_config: str | Path | None = None,
    prefill: str = MAJORITY,
    top: int | None = None,
    min_score: float | None = None,
    diversify: int | None = None,
    vectors: str | Path | None = None,
    agreements: str | Path | None = None,
    lang: str = DEFAULT_LANG,
    missing: str = "include",
    llm_failures: str = QUEUE_FAILED,
    skip_invalid: bool = False,
    overwrite: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> DiffSummary:
    """Rank the examples of two or more prediction files by disagreement.

    Writes the disagreeing examples, highest `scorer` value first, to `output` as ner_manual tasks
    (choice tasks for categories), or with `output_format="review"` one version per model, or
    for another tool (`"labelstudio"`, its config to `labelstudio_config`; `"doccano"`;
    `"argilla"`, `output` a dataset folder; see exports/); and the examples on which every
    model agrees exactly to `agreements` (Prodigy JSONL whatever the format; a spaCy DocBin,
    tokenised by the blank `lang` pipeline, when its name ends in `.spacy`, see docbin.py).
    `scorer` defaults to span_f1 for entities and total_variation for categories. Ties go to
    the example with more differences, then to the earlier one in the input, so the same inputs
    always give byte-identical outputs. `prefill`: see `prefill.py`.

    `target`: rank by how likely that model is wrong (target_scorers.py, default scorer
    error_probability). An agreement that a model with beam scores (`predict --scores`) is
    unsure of (a span below `min_confidence`, a near miss above 1 − it) is held back from
    `agreements` and queued. `calibrate`: annotated examples (a Prodigy export, a gold file)
    from which each model's reliability is counted (evidence.py); they are left out of the
    queue; `calibrate_format` says which tool's export it is (imports/). `split_by_model`: a
    folder that gets one queue per model, `MODEL.jsonl` (`.json` for Label Studio, a folder
    MODEL for Argilla), of the examples on which that model is the likely wrong one, its most
    likely errors first.
    `exclude`: annotated files (any tool's export, see annotated_texts.py) whose texts are
    written nowhere: not queued, not agreements, not split; `summary.excluded` counts them.
    `output=None` writes no single queue.

    `llm_failures`: an example where a model's LLM answer failed (`meta.llm_error`) is never
    written to `agreements`; "queue" queues it as its scores rank it (a failed answer reads as
    no entities), its `meta.llm_failed` naming the models; "leave-out" writes it nowhere.

    `diversify`: the first `diversify` examples of each queue are chosen among its top
    3 × `diversify` to be far apart in `vectors`' document vectors (a spaCy pipeline with word
    vectors; diversity.py), so near-duplicates do not fill the batch; the rest follow in rank
    order, and every example is still written.
    """
    format_class = get_queue_format(output_format)
    policy = QueuePolicy(missing, llm_failures, min_score)
    scoring = Scoring.for_files(paths, names, scorer, target=target, min_confidence=min_confidence)
    models = scoring.models
    scoring.blame = bool(calibrate or split_by_model)
    queue_format = format_class(scoring, prefill)
    split_paths = _split_paths(split_by_model, models, queue_format.suffix)
    shortened = [model for model in split_paths if file_stem(model)[1]]
    outputs = {"--output": output, "--agreements": agreements, **split_paths}
    companions = queue_format.companions(
        output, split_by_model, {"--labelstudio-config": labelstudio_config}
    )
    inputs = [*paths, *([calibrate] if calibrate else []), *exclude]
    split_named = {f"--split-by-model ({model})": path for model, path in split_paths.items()}
    check_outputs({"--output": output, "--agreements": agreements, **split_named, **companions},
                  inputs)  # fmt: skip
    for option, path in [*outputs.items(), *companions.items()]:  # refuse before any reading
        if path and Path(path).parent.is_dir():  # a split folder is made only once all is set
            if option == "--agreements" or option in companions:
                JsonlWriter.check(path, overwrite=overwrite, resumable=False)
            else:
                queue_format.check(path, overwrite=overwrite)
    check_calibrate(scoring, calibrate, calibrate_format)
    if diversify is not None and (diversify < 1 or vectors is None):
        raise DisagreeError(
            f"--diversify {diversify}: give a batch size of 1 or more and --vectors MODEL, a "
            "spaCy pipeline with word vectors (the local model you predicted with)"
        )
    if prefill not in (*PREFILLS, *models):
        raise DisagreeError(
            f"--prefill {prefill!r}: choose {', '.join(PREFILLS)} or a model: {', '.join(models)}"
        )
    stats = [FileStats(str(p), name) for p, name in zip(paths, models, strict=True)]
    summary = DiffSummary(models, stats, scoring.scorer, scoring.kind, target=target,
                          llm_failures=llm_failures, ranked_by=scoring.ranked_by,
                          shortened=shortened)  # fmt: skip
    annotated = calibrated(scoring, calibrate, calibrate_format, paths, skip_invalid)
    excluded = read_annotated_texts(exclude, skip_invalid=skip_invalid)
    summary.exclusions = excluded if exclude else None
    if calibrate is not None:
        summary.calibration = scoring.reliability
    queue: list[tuple[tuple[float, int, int], int, int]] = []  # (rank key, offset, length)
    texts: dict[int, str] = {}  # offset -> text, kept only for --diversify
    per_model: dict[str, list[tuple[tuple[float, int, int], int, int]]] = {
        m: [] for m in split_paths
    }

    # No flush per write: diff cannot be resumed, and the output only appears once complete.
    writers: dict[str, JsonlWriter] = {}
    made_folder = None  # a split folder this run made: removed again if the run fails
    if split_by_model is not None and not Path(split_by_model).is_dir():
        made_folder = Path(split_by_model)
        made_folder.mkdir()

    written: list[Path] = []  # companion files this run wrote: removed again if it fails

    agree_writer: JsonlWriter | DocBinWriter | None = None

    def discard_all() -> None:
        if agree_writer is not None:
            agree_writer.discard()
        for opened in writers.values():
            opened.discard()  # e.g. agree.jsonl exists: leave no ranked.jsonl.partial behind
        for path in written:
            path.unlink(missing_ok=True)
        if made_folder is not None and not any(made_folder.iterdir()):
            made_folder.rmdir()

    try:
        for option, path in outputs.items():
            if path and option == "--agreements":  # Prodigy's JSONL, whatever the --format
                if is_docbin_path(path):
                    agree_writer = DocBinWriter(path, lang=lang, overwrite=overwrite)
                else:
                    agree_writer = JsonlWriter(
                        path, overwrite=overwrite, flush_each_write=False, resumable=False
                    )
            elif path:
                writers[option] = queue_format.open(path, overwrite=overwrite)
    except BaseException:
        discard_all()
        raise
    writer = writers.get("--output")
    try:
        with tempfile.TemporaryFile() as spool:
            spooled = 0  # bytes written to the spool so far
            aligned = align_files(
                paths, models, stats, kind=scoring.kind, skip_invalid=skip_invalid
            )
            for seq, example in enumerate(aligned):
                if on_progress is not None:
                    on_progress(1)
                if example.input_hash in annotated:
                    summary.annotated += 1
                    continue
                if example.input_hash in excluded:
                    summary.excluded += 1
                    continue
                scored = scoring.score(example)
                _count(summary, scored)
                route = policy.route(scored)
                summary.failed.count(scored, route)
                if route == AGREEMENT:
                    if agree_writer is not None:
                        _write_agreement(agree_writer, example, models, stats)
                        summary.agreements_written += 1
                    continue
                if route is None:
                    continue
                records = queue_format.records(scored)
                data = b"".join(dumps_line(r) for r in records)
                queue.append((rank_key(scored, seq), spooled, len(data)))
                if diversify:
                    texts[spooled] = example.text
                if per_model:
                    errors = scored.model_errors
                    for model in likely_wrong_models(scored):
                        # no evidence on a failed answer's "agreement": it ranks last, at 0
                        key = queue_order(errors.get(model, 0.0), len(scored.differences), seq)
                        per_model[model].append((key, spooled, len(data)))
                spool.write(data)
                spooled += len(data)
            check_overlap(stats, summary.texts_read, summary.missing,
                          require_all=missing == "error")  # fmt: skip
            summary.queued = len(queue)
            rank = queue_format.with_rank
            spreader = None
            if diversify and vectors is not None:
                summary.diversified = min(diversify, len(queue))

                def spreader(entries: list[_Entry]) -> list[_Entry]:
                    return spread(entries, lambda e: texts[e[1]], diversify, vectors)

            if writer is not None:
                summary.written = _write_ranked(spool, queue, writer, top, rank, spreader)
            for model, entries in per_model.items():
                _write_ranked(spool, entries, writers[model], top, rank, spreader)
                summary.split[model] = (str(split_paths[model]), len(entries[:top]))
        labels = sorted(set().union(*(s.labels for s in stats)))
        queue_format.write_companions(companions, labels, overwrite=overwrite)
        written.extend(companions.values())
        summary.companions = {option: str(path) for option, path in companions.items()}
        for opened in writers.values():
            opened.commit()
        if agree_writer is not None:
            agree_writer.commit()
            if isinstance(agree_writer, DocBinWriter):
                summary.agreements_docbin = agree_writer.summary
    except BaseException:
        discard_all()
        raise
    return summary


def _write_agreement(
    writer: JsonlWriter | DocBinWriter,
    example: AlignedExample,
    models: Sequence[str],
    stats: Sequence[FileStats],
) -> None:
    try:
        writer.write_many([agreement_task(example, models)])
    except RecordError as err:  # a DocBin refuses a text longer than spaCy's max_length
        i, first = next((i, t) for i, t in enumerate(example.tasks) if t is not None)
        raise InputError(stats[i].path, first.line, err.problem, field=err.field) from None


def _write_ranked(
    spool: BinaryIO,
    entries: list[tuple[tuple[float, int, int], int, int]],
    writer: JsonlWriter,
    top: int | None,
    with_rank: Callable[[bytes, int], bytes],
    spreader: Callable[[list[_Entry]], list[_Entry]] | None = None,
) -> int:
    """Write the spooled records of `entries` in rank order (its top spread by `spreader`),
    each with its rank; lines written."""
    entries.sort()
    if spreader is not None:
        entries[:] = spreader(entries)
    written = 0
    for rank, (_, offset, length) in enumerate(entries[:top], start=1):
        spool.seek(offset)
        lines = spool.read(length).splitlines(keepends=True)
        written += writer.write_lines([with_rank(line, rank) for line in lines])
    return written


def likely_wrong_models(scored: ScoredExample) -> list[str]:
    """The models whose queue an example joins with --split-by-model: on each difference the
    most likely wrong one; on a held-back agreement, the model that is unsure; on an agreement
    resting on a failed LLM answer, the model whose answer failed."""
    if not scored.differences:
        return list(dict.fromkeys([*scored.unsure_models, *scored.llm_failed]))
    return sorted({model for item in scored.likely_wrong for model in item["likely_wrong"]})


def check_calibrate(scoring: Scoring, calibrate: object, calibrate_format: str) -> None:
    """--calibrate and --gold-format make sense together, on entities; checked before work."""
    if calibrate is None and calibrate_format != AUTO:
        raise DisagreeError(f"--gold-format {calibrate_format}: says what --calibrate's file is; "
                            "give --calibrate FILE too")  # fmt: skip
    if calibrate is not None and scoring.kind is not TaskKind.NER:
        raise DisagreeError("--calibrate learns entity reliabilities; the files hold categories")


def calibrated(
    scoring: Scoring,
    calibrate: str | Path | None,
    calibrate_format: str,
    paths: Sequence[str | Path],
    skip_invalid: bool = False,
) -> set[int]:
    """With a `calibrate` file, each model's reliability learnt from it into `scoring` (the
    target scorers rank by it); the input hashes of its examples, which leave the queue."""
    check_calibrate(scoring, calibrate, calibrate_format)
    if calibrate is None:
        return set()
    scoring.reliability, annotated = calibrate_on(
        calibrate, paths, scoring, skip_invalid, calibrate_format
    )
    return annotated


def calibrate_on(
    annotated_path: str | Path,
    paths: Sequence[str | Path],
    scoring: Scoring,
    skip_invalid: bool = False,
    annotated_format: str = AUTO,
) -> tuple[Reliability, set[int]]:
    """Each model's reliability counted on the accepted examples of `annotated_path` (a Prodigy
    export, a gold file, a Label Studio or doccano export: `annotated_format`, see imports/)
    that the prediction files share, and their input hashes."""
    names = ["annotated", *scoring.models]
    if "annotated" in scoring.models:
        names[0] = "annotated (--calibrate)"
    stats = [FileStats(str(p), n) for p, n in zip([annotated_path, *paths], names, strict=True)]
    observations = []
    hashes: set[int] = set()
    with prodigy_file(annotated_path, annotated_format) as (read_path, _):
        for example in align_files(
            [read_path, *paths], names, stats, kind=TaskKind.NER, skip_invalid=skip_invalid
        ):
            gold, tasks = example.tasks[0], example.tasks[1:]
            if gold is None or any(t is None for t in tasks):
                continue
            hashes.add(example.input_hash)
            versions = scoring.versions(AlignedExample.of(example.input_hash, example.text, tasks))
            observations.append((versions, frozenset(gold.span_keys)))
    if not observations:
        raise DisagreeError(
            f"{annotated_path}: --calibrate found no accepted annotation of a text that every "
            "prediction file holds; is it an export of this corpus's queue?"
        )
    return Reliability.fit(observations, scoring.models), hashes


def _split_paths(
    folder: str | Path | None, models: Sequence[str], suffix: str = ".jsonl"
) -> dict[str, Path]:
    """MODEL.jsonl (MODEL`suffix`) in `folder` per model (names made safe for a file name);
    {} without one."""
    if folder is None:
        return {}
    if str(folder) == "-":
        raise DisagreeError("--split-by-model needs a folder, not stdout ('-')")
    root = Path(folder)
    if root.exists() and not root.is_dir():
        raise DisagreeError(f"{root}: --split-by-model needs a folder; this is a file")
    if not root.parent.is_dir():
        raise DisagreeError(f"{root}: --split-by-model: the folder {root.parent} does not exist")
    paths: dict[str, Path] = {}
    for model in models:
        path = root / f"{file_stem(model)[0]}{suffix}"
        if path in paths.values():
            raise DisagreeError(
                f"--split-by-model: models {model!r} and another give the file name {path.name}"
            )
        paths[model] = path
    return paths


# A file name has at most 255 bytes; the queue's suffix, .partial and the name of a folder
# moved aside (Argilla) are added to the model's part.
MAX_STEM = 200


def file_stem(model: str) -> tuple[str, bool]:
    """The part of --split-by-model's file name that names `model`: made safe for a file name,
    and, when its UTF-8 is longer than MAX_STEM bytes, cut (at a character) and ended with a
    hash of the whole name, so that names alike in their first 187 bytes stay apart; and
    whether it was shortened.

        >>> file_stem("spacy md/v3")
        ('spacy_md_v3', False)
        >>> stem, short = file_stem("x" * 300); len(stem), short, stem[-13:]
        (200, True, '-0d4e2ca9e9cb')
    """
    safe = re.sub(r"[^\w.-]+", "_", model).strip("._") or "model"
    encoded = safe.encode()
    if len(encoded) <= MAX_STEM:
        return safe, False
    digest = hashlib.sha256(model.encode()).hexdigest()[:12]
    return f"{encoded[: MAX_STEM - 13].decode('utf-8', 'ignore')}-{digest}", True


def _count(summary: DiffSummary, scored: ScoredExample) -> None:
    summary.total += 1
    example = scored.example
    if example.missing_models:
        summary.missing += 1
        absent = [summary.models[i] for i in example.missing_models]
        summary.missing_by_model.update(absent)
        if len(summary.missing_examples) < 20:
            summary.missing_examples.append((", ".join(absent), example.text))
    elif scored.differences:
        summary.disagreeing += 1
    else:
        summary.agreeing += 1
        if scored.held_back:
            summary.held_back[scored.held_back.split(":", 1)[0]] += 1
            if len(summary.held_back_examples) < 20:
                summary.held_back_examples.append(scored.held_back)
    for difference in scored.differences:
        summary.by_conflict[difference.conflict] += 1
        summary.by_label.update(sorted(difference.labels))  # a set: ties in a fixed order
