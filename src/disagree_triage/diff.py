"""diff: align models' predictions, score their disagreement, write a ranked annotation queue.

    >>> from disagree_triage import diff_files
    >>> summary = diff_files(["out-spacy.jsonl", "out-llm.jsonl"],  # doctest: +SKIP
    ...                      output="ranked.jsonl", agreements="agree.jsonl")

Data flows one way: align (align.py) -> compare (compare.py) -> score (scorers.py) -> rank ->
write. Both kinds of task go through it: NER (`ner_manual`) and choice (categories, see
categories.py), whose accepted options travel as whole-text spans; only the scorers and the
tasks written differ by kind. Ranking needs every score before the first line can be written,
so each queued example's rendered task is spooled to a temporary file and only (score, key,
offset) is kept in memory.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .align import AlignedExample, FileStats, align_files
from .categories import (
    accepts_one,
    choice_task,
    describe_choice,
    option_ids,
    prefill_accept,
    union_options,
    votes_of,
)
from .compare import Difference, find_differences
from .errors import DisagreeError, RecordError
from .hashing import task_hash
from .jsonl import JsonlWriter, dumps_line, parse_line
from .prodigy import ProdigyTask
from .scorers import CHOICE, NER, check_scorer, scorers_for

PREFILL_UNION, PREFILL_NONE = "union", "none"
QUEUE, REVIEW = "queue", "review"
# "ner_manual" / "choice": the queue's names by kind of task, kept as aliases.
FORMATS = (QUEUE, REVIEW, "ner_manual", "choice")
MISSING_CHOICES = ("include", "skip")


@dataclass
class ScoredExample:
    """One aligned example with its differences and every scorer's value."""

    example: AlignedExample
    differences: Sequence[Difference]
    scores: dict[str, float]
    score: float
    kind: str = NER  # "ner" or "choice": which scorers ran, which tasks get written

    @property
    def agrees(self) -> bool:
        return not self.differences and not self.example.missing_models


@dataclass
class DiffSummary:
    models: list[str]
    files: list[FileStats]
    scorer: str
    kind: str = NER  # "ner" or "choice", from the files
    total: int = 0
    agreeing: int = 0
    disagreeing: int = 0
    missing: int = 0
    queued: int = 0
    written: int = 0
    agreements_written: int = 0
    missing_by_model: Counter[str] = field(default_factory=Counter)
    missing_examples: list[tuple[str, str]] = field(default_factory=list)  # (models, text)
    by_kind: Counter[str] = field(default_factory=Counter)
    by_label: Counter[str] = field(default_factory=Counter)

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


def kind_of(example: AlignedExample) -> str:
    """ "choice" when every model's version is a choice task, else "ner"."""
    present = [t for t in example.tasks if t is not None]
    return CHOICE if all(t.accept is not None for t in present) else NER


def scoring_for(
    example: AlignedExample, scorer: str | None
) -> tuple[str, str, dict[str, Callable[[Any], float]]]:
    """(kind, scorer, registered scorers) for a run, from its first example: the kind of task
    decides which registry applies and what the default scorer is."""
    kind = kind_of(example)
    return kind, check_scorer(scorer, kind), scorers_for(kind)


def score_example(
    example: AlignedExample,
    scorer: str | None = None,
    registered: dict[str, Callable[[Any], float]] | None = None,
) -> ScoredExample:
    """Differences and every registered scorer's value, over the models that have the text.

    `registered` is `scorers_for(kind)`, looked up once per run: the registry lookup reads
    entry points and costs more than scoring itself. `scorer` defaults to the kind's default.
    """
    kind = kind_of(example)
    registered = registered if registered is not None else scorers_for(kind)
    scorer = scorer or check_scorer(None, kind)
    keys = [t.span_keys for t in example.tasks if t is not None]
    if all(k == keys[0] for k in keys[1:]):
        # Most examples agree; every scorer is 0 on agreement by contract (see scorers.py).
        return ScoredExample(example, (), dict.fromkeys(registered, 0.0), 0.0, kind)
    present = [frozenset(k) for k in keys]
    differences = find_differences(present)
    inputs: Any = votes_of(example.tasks) if kind == CHOICE else present
    scores = {name: float(fn(inputs)) for name, fn in registered.items()}
    return ScoredExample(example, differences, scores, scores[scorer], kind)


def _present_names(example: AlignedExample, models: Sequence[str]) -> list[str]:
    return [name for name, task in zip(models, example.tasks, strict=True) if task is not None]


def describe_differences(scored: ScoredExample, models: Sequence[str]) -> list[str]:
    names = _present_names(scored.example, models)
    if scored.kind == CHOICE:
        tasks = scored.example.tasks
        words = [describe_choice(tasks, models)] if scored.differences else []
    else:
        words = [d.describe(scored.example.text, names) for d in scored.differences]
    missing = [models[i] for i in scored.example.missing_models]
    if missing:
        words.append(f"not in the file of: {', '.join(missing)}")
    return words


def _union_spans(tasks: Sequence[ProdigyTask | None]) -> list[tuple[int, int, str]]:
    """Every span any model found; where spans overlap, the one most models proposed
    (ties: the earlier file), so the result stays valid for ner_manual (no overlaps)."""
    votes: Counter[tuple[int, int, str]] = Counter()
    first_model: dict[tuple[int, int, str], int] = {}
    for i, task in enumerate(tasks):
        if task is None:
            continue
        for key in task.span_keys:
            votes[key] += 1
            first_model.setdefault(key, i)
    chosen: list[tuple[int, int, str]] = []
    for key in sorted(votes, key=lambda k: (-votes[k], first_model[k], k)):
        if all(key[1] <= s or e <= key[0] for s, e, _ in chosen):
            chosen.append(key)
    return sorted(chosen)


def _spans_for(
    scored: ScoredExample, models: Sequence[str], prefill: str
) -> list[tuple[int, int, str]]:
    tasks = scored.example.tasks
    if prefill == PREFILL_NONE:
        return []
    if prefill == PREFILL_UNION:
        return _union_spans(tasks)
    task = tasks[list(models).index(prefill)]
    return list(task.span_keys) if task is not None else []


def _tokens_source(
    tasks: Sequence[ProdigyTask | None], preferred: int | None
) -> ProdigyTask | None:
    """The task whose `tokens` the output uses: the preferred model's, else the first with any."""
    order = ([preferred] if preferred is not None else []) + list(range(len(tasks)))
    for i in order:
        task = tasks[i]
        if task is not None and isinstance(task.record.get("tokens"), list):
            return task
    return None


def _span_dicts(
    text: str,
    keys: Sequence[tuple[int, int, str]],
    tokens: list[dict[str, Any]] | None,
    tasks: Sequence[ProdigyTask | None] = (),
) -> list[dict[str, Any]]:
    """Span dicts for `keys`, with token indices into `tokens` where the span sits on tokens.

    The indices a model's own span carries are used when they point at tokens with the span's
    offsets (one look-up each); only otherwise is a character-offset map built.
    """
    hints = {
        (raw["start"], raw["end"], raw["label"]): (raw.get("token_start"), raw.get("token_end"))
        for task in reversed(tasks)  # earlier files win
        if task is not None
        for raw in task.record.get("spans") or ()
    }
    n_tokens = len(tokens) if tokens else 0
    starts: dict[int, int] | None = None
    ends: dict[int, int] = {}
    spans = []
    for key in keys:
        start, end, label = key
        span: dict[str, Any] = {"start": start, "end": end, "text": text[start:end], "label": label}
        if tokens:
            first, last = hints.get(key, (None, None))
            if (
                type(first) is int
                and type(last) is int
                and 0 <= first <= last < n_tokens
                and tokens[first].get("start") == start
                and tokens[last].get("end") == end
            ):
                first, last = tokens[first].get("id", first), tokens[last].get("id", last)
            else:
                if starts is None:
                    starts = {t["start"]: t["id"] for t in tokens if "start" in t and "id" in t}
                    ends = {t["end"]: t["id"] for t in tokens if "end" in t and "id" in t}
                first, last = starts.get(start), ends.get(end)
            if first is not None and last is not None:
                span["token_start"] = first
                span["token_end"] = last
        spans.append(span)
    return spans


def _meta(scored: ScoredExample, models: Sequence[str], scorer: str) -> dict[str, Any]:
    """Score, every scorer's value and the differences in words first; then the input's meta."""
    # "rank" is a placeholder until every score is known; see _with_rank.
    meta: dict[str, Any] = {"rank": 0, "score": round(scored.score, 6), "scorer": scorer}
    for name, value in scored.scores.items():
        meta[name] = round(value, 6)
    meta["differences"] = describe_differences(scored, models)
    base = next(t for t in scored.example.tasks if t is not None).meta
    for key, value in base.items():
        meta.setdefault(key, value)
    return meta


def _ner_task(
    example: AlignedExample,
    meta: dict[str, Any],
    keys: Sequence[tuple[int, int, str]],
    tokens: list[dict[str, Any]] | None,
    *,
    source: ProdigyTask | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A ner_manual task with `keys` as spans. `source`: the task the spans and tokens both come
    from; its own span dicts are reused when they carry token indices (no re-alignment)."""
    task: dict[str, Any] = {"text": example.text, "meta": meta}
    if tokens is not None:
        task["tokens"] = tokens
    raw_spans = source.record.get("spans") if source is not None else None
    if not keys:
        task["spans"] = []
    elif raw_spans and (tokens is None or all("token_end" in s for s in raw_spans)):
        task["spans"] = raw_spans
    else:
        task["spans"] = _span_dicts(example.text, keys, tokens, example.tasks)
    task["_input_hash"] = example.input_hash
    task["_task_hash"] = task_hash(example.input_hash, spans=keys)
    task["_view_id"] = "ner_manual"
    task.update(extra)
    return task


def ranked_task(
    scored: ScoredExample, models: Sequence[str], scorer: str, prefill: str
) -> dict[str, Any]:
    """A task for the annotation queue (no `answer`: it is still to be annotated): ner_manual,
    or choice for categories."""
    if scored.kind == CHOICE:
        return _queue_choice_task(scored, models, scorer, prefill)
    tasks = scored.example.tasks
    preferred = list(models).index(prefill) if prefill in models else None
    tokens_from = _tokens_source(tasks, preferred)
    tokens = tokens_from.record["tokens"] if tokens_from is not None else None
    keys = _spans_for(scored, models, prefill)
    source = tasks[preferred] if preferred is not None else None
    meta = _meta(scored, models, scorer)
    return _ner_task(
        scored.example, meta, keys, tokens, source=source if source is tokens_from else None
    )


def review_tasks(scored: ScoredExample, models: Sequence[str], scorer: str) -> list[dict[str, Any]]:
    """One version per model, for `prodigy db-in` + `prodigy review`."""
    meta = _meta(scored, models, scorer)
    if scored.kind == CHOICE:
        return _review_choice_tasks(scored, models, meta)
    versions = []
    for i, (name, task) in enumerate(zip(models, scored.example.tasks, strict=True)):
        if task is None:
            continue
        keys = task.span_keys
        tokens_from = _tokens_source(scored.example.tasks, i)
        tokens = tokens_from.record["tokens"] if tokens_from is not None else None
        versions.append(
            _ner_task(
                scored.example,
                meta,
                keys,
                tokens,
                source=task if task is tokens_from else None,
                answer="accept",
                _annotator_id=name,
                _session_id=name,
            )
        )
    return versions


def agreement_task(scored: ScoredExample, models: Sequence[str]) -> dict[str, Any]:
    """An example all models agree on, as an accepted answer for the user who auto-accepts.

    The first model's record already holds the agreed spans and the tokens: it is copied and
    re-labelled rather than rebuilt (most examples agree, so this path is hot).
    """
    first = next(t for t in scored.example.tasks if t is not None)
    task = {k: v for k, v in first.record.items() if k not in _VERSION_KEYS}
    task["meta"] = {**first.meta, "agreed_by": list(models)}
    ih = scored.example.input_hash
    if first.accept is not None:
        answer_hash, view_id = task_hash(ih, accept=first.accept), "choice"
    else:
        if not first.has_spans:
            task["spans"] = []
        answer_hash, view_id = task_hash(ih, spans=first.span_keys), "ner_manual"
    task["_input_hash"] = ih
    task["_task_hash"] = answer_hash
    task["_view_id"] = view_id
    task["answer"] = "accept"
    return task


def _exclusive(tasks: Sequence[ProdigyTask | None]) -> bool:
    """One category per text, unless some model's version allows or accepted several."""
    return all(accepts_one(task) for task in tasks if task is not None)


def _queue_choice_task(
    scored: ScoredExample, models: Sequence[str], scorer: str, prefill: str
) -> dict[str, Any]:
    tasks = scored.example.tasks
    exclusive = _exclusive(tasks)
    if prefill == PREFILL_NONE:
        accept: list[str] = []
    elif prefill == PREFILL_UNION:
        accept = prefill_accept(tasks, exclusive)
    else:
        chosen = tasks[list(models).index(prefill)]
        accept = list(chosen.accept or ()) if chosen is not None else []
    meta = _meta(scored, models, scorer)
    example = scored.example
    return choice_task(
        example.text,
        example.input_hash,
        union_options(tasks),
        accept,
        exclusive=exclusive,
        fields={"meta": meta},
    )


def _review_choice_tasks(
    scored: ScoredExample, models: Sequence[str], meta: dict[str, Any]
) -> list[dict[str, Any]]:
    example = scored.example
    exclusive = _exclusive(example.tasks)
    versions = []
    for name, task in zip(models, example.tasks, strict=True):
        if task is None:
            continue
        cats = task.record.get("cats")
        version = choice_task(
            example.text,
            example.input_hash,
            option_ids(task.record) or union_options(example.tasks),
            list(task.accept or ()),
            exclusive=exclusive,
            fields={"meta": meta},
            cats=cats if isinstance(cats, dict) else None,
        )
        version.update(answer="accept", _annotator_id=name, _session_id=name)
        versions.append(version)
    return versions


# What belongs to one model's version, not to the agreed answer.
_VERSION_KEYS = frozenset({"_annotator_id", "_session_id", "_timestamp", "llm_io", "answer"})


def _first_record(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as stream:
            for i, raw in enumerate(stream, start=1):
                record = parse_line(raw, i)
                if record is not None:
                    return record
    except (OSError, RecordError):
        pass  # align_files reports unreadable files with file and line
    return {}


def model_names(paths: Sequence[str | Path], names: Sequence[str] | None = None) -> list[str]:
    """`--names`, else each file's `_annotator_id` / `_session_id`, else its file name."""
    if names:
        if len(names) != len(paths):
            raise DisagreeError(f"--names gives {len(names)} names for {len(paths)} files")
        chosen = [n.strip() for n in names]
    else:
        chosen = []
        for path in paths:
            record = _first_record(Path(path))
            name = record.get("_annotator_id") or record.get("_session_id") or Path(path).stem
            chosen.append(str(name))
    if any(not n for n in chosen):
        raise DisagreeError("--names: every model needs a non-empty name")
    repeated = sorted(n for n, c in Counter(chosen).items() if c > 1)
    if repeated:
        raise DisagreeError(
            f"two input files name the model {repeated[0]!r}; pass --names to tell them apart"
        )
    return chosen


def diff_files(
    paths: Sequence[str | Path],
    *,
    output: str | Path = "-",
    names: Sequence[str] | None = None,
    scorer: str | None = None,
    output_format: str = QUEUE,
    prefill: str = PREFILL_UNION,
    top: int | None = None,
    min_score: float | None = None,
    agreements: str | Path | None = None,
    missing: str = "include",
    skip_invalid: bool = False,
    overwrite: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> DiffSummary:
    """Rank the examples of two or more prediction files by disagreement.

    Writes the disagreeing examples, highest `scorer` value first, to `output` as ner_manual tasks
    (choice tasks for categories), or with `output_format="review"` one version per model; and
    the examples on which every model agrees exactly to `agreements`. `scorer` defaults to
    span_f1 for entities and total_variation for categories. Ties are broken by input hash, then
    input order, so the same inputs always give byte-identical outputs.
    """
    if len(paths) < 2:
        raise DisagreeError("diff needs at least two prediction files")
    if output_format not in FORMATS:
        raise DisagreeError(f"--format {output_format!r}: choose one of {', '.join(FORMATS)}")
    if missing not in MISSING_CHOICES:
        raise DisagreeError(f"--missing {missing!r}: choose one of {', '.join(MISSING_CHOICES)}")
    check_scorer(scorer)  # a name no kind knows fails before anything is read
    models = model_names(paths, names)
    if prefill not in (PREFILL_UNION, PREFILL_NONE, *models):
        raise DisagreeError(
            f"--prefill {prefill!r}: choose union, none or a model: {', '.join(models)}"
        )
    stats = [FileStats(str(p), name) for p, name in zip(paths, models, strict=True)]
    summary = DiffSummary(models, stats, scorer or "")
    registered: dict[str, Callable[[Any], float]] = {}
    queue: list[tuple[float, int, int, int, int]] = []  # (-score, hash, seq, offset, length)

    # No flush per write: diff cannot be resumed, and the output only appears once complete.
    writer = JsonlWriter(output, overwrite=overwrite, flush_each_write=False)
    try:
        agree_writer = (
            JsonlWriter(agreements, overwrite=overwrite, flush_each_write=False)
            if agreements
            else None
        )
    except BaseException:
        writer.discard()  # e.g. agree.jsonl exists: leave no ranked.jsonl.partial behind
        raise
    try:
        with tempfile.TemporaryFile() as spool:
            spooled = 0  # bytes written to the spool so far
            aligned = align_files(paths, models, stats, skip_invalid=skip_invalid)
            for seq, example in enumerate(aligned):
                if not registered:  # the first example tells the kind of task
                    summary.kind, summary.scorer, registered = scoring_for(example, scorer)
                scored = score_example(example, summary.scorer, registered)
                _count(summary, scored)
                if on_progress is not None:
                    on_progress(1)
                if scored.agrees:
                    if agree_writer is not None:
                        agree_writer.write_line(dumps_line(agreement_task(scored, models)))
                        summary.agreements_written += 1
                    continue
                if example.missing_models and missing == "skip":
                    continue
                if min_score is not None and scored.score < min_score:
                    continue
                if output_format == REVIEW:
                    tasks = review_tasks(scored, models, summary.scorer)
                else:
                    tasks = [ranked_task(scored, models, summary.scorer, prefill)]
                data = b"".join(dumps_line(t) for t in tasks)
                queue.append((-scored.score, example.input_hash, seq, spooled, len(data)))
                spool.write(data)
                spooled += len(data)
            _check_overlap(summary)
            summary.queued = len(queue)
            queue.sort()
            for rank, (_, _, _, offset, length) in enumerate(queue[:top], start=1):
                spool.seek(offset)
                lines = spool.read(length).splitlines(keepends=True)
                summary.written += writer.write_lines([_with_rank(line, rank) for line in lines])
        writer.commit()
        if agree_writer is not None:
            agree_writer.commit()
    except BaseException:
        writer.discard()
        if agree_writer is not None:
            agree_writer.discard()
        raise
    return summary


_RANK_PLACEHOLDER = b'"meta":{"rank":0,'


def _with_rank(line: bytes, rank: int) -> bytes:
    """Fill in the rank without parsing the line again.

    The placeholder is the first key of our own `meta`, which follows `text`; inside the JSON
    string `text` every quote is escaped, so the first match is always ours.
    """
    return line.replace(_RANK_PLACEHOLDER, b'"meta":{"rank":%d,' % rank, 1)


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
    for difference in scored.differences:
        summary.by_kind[difference.kind] += 1
        summary.by_label.update(difference.labels)


def _check_overlap(summary: DiffSummary) -> None:
    """Files that share no text are not predictions on the same corpus."""
    if summary.total and summary.missing == summary.total:
        raise DisagreeError(
            f"{', '.join(f.path for f in summary.files)}: no text is in all files; are they "
            "predictions on the same corpus?"
        )
