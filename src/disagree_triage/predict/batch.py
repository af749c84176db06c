"""predict through a batch job: OpenAI's Batch API, or vLLM's offline runner.

A hosted model costs half as much through OpenAI's Batch API, and a GPU box runs
`vllm run-batch -i REQUESTS -o ANSWERS` over the same JSONL, with no server to keep up. Both
read one request per line (`custom_id`, `method`, `url`, `body`) and write one answer per line
(`custom_id`, `response: {status_code, request_id, body}`, `error`).

Nothing here builds a prompt or reads an answer: `predict` does, as on the live path.
`submit` runs the pipeline over INPUT with the backend offline (`OpenAICompatibleModel.offline`):
each prompt that is not in the response cache becomes a request line, with the body the live
path would send (`request_body`) and the response cache's key as `custom_id`, so that the
answer finds its prompt again whatever the order of the output. The lines go to OpenAI (split
at its limits: 50,000 requests or 200 MB a file), or to one file for vLLM; a state file
beside OUTPUT (`OUTPUT.batch.json`: the batch ids, request files and their SHA-256, never a
key) remembers the job. `collect` downloads the answers and runs `predict` again with the
backend serving each prompt from them, and from the cache: the task parses them as live
answers, a failed line becomes `meta.llm_error`, every answer lands in the response cache,
OUTPUT is written exactly as the live path would, and no request is sent. A second `collect`
finds everything in the cache and writes the same OUTPUT.

An expired, cancelled or failed batch leaves the requests it did not answer in
`meta.llm_error`; `submit` again sends only those (the answered ones are in the cache, or in
the earlier batches' output), and `collect` then reads every batch of the job.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..core.errors import DisagreeError, OptionError
from ..core.redaction import redact
from ..io.output_files import check_outputs, write_atomic
from ..llm.batch_api import (
    MAX_BYTES,
    MAX_REQUESTS,
    BatchAnswer,
    BatchClient,
    BatchJob,
    BatchNotDone,
    BatchState,
    file_sha256,
    gather_answers,
    read_answers,
    request_line,
    sha256_of,
    split_requests,
)
from ..llm.failures import failed_response
from ..llm.openai_compatible import OpenAICompatibleModel
from .llm_answers import llm_components
from .options import PredictOptions
from .pipeline import load_pipeline
from .run import PredictSummary, predict_file

__all__ = ["MODES", "BatchNotDone", "BatchSummary", "collect", "state_path", "submit"]

MODES = ("submit", "collect", "file")
RECORDED = "recorded for a batch job"  # the answer of the recording pass (thrown away)


@dataclass
class BatchSummary:
    """What a `--batch` run did, for the end-of-run report."""

    mode: str
    state: str  # the state file
    requests: int = 0  # request lines written (submit, file)
    already_answered: int = 0  # prompts answered before (cache, earlier batches): not sent
    files: list[str] = field(default_factory=list)  # request files written
    jobs: list[BatchJob] = field(default_factory=list)  # created (submit) or read (collect)
    answered: int = 0  # collect: request lines with an answer
    failed: int = 0  # collect: request lines with an error
    predict: PredictSummary | None = None  # collect: what writing OUTPUT did


def state_path(output_path: str | Path) -> Path:
    return Path(f"{output_path}.batch.json")


def submit(
    model: str | Path,
    input_path: str | Path,
    output_path: str | Path,
    options: PredictOptions | None = None,
    *,
    request_file: str | Path | None = None,
    max_requests: int = MAX_REQUESTS,
    max_bytes: int = MAX_BYTES,
    on_start: Callable[[PredictSummary], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    **settings: Any,
) -> BatchSummary:
    """Write the prompts of `predict` over `input_path` as Batch-API requests: to
    `request_file` only (for `vllm run-batch`), or else uploaded to the config's server as
    batches of at most `max_requests` lines and `max_bytes`. `options` and `settings` as for
    `predict_file`."""
    options = _checked(PredictOptions.of(options, settings))
    _check_paths(input_path, output_path, request_file)
    state_file = state_path(output_path)
    mode = "file" if request_file is not None else "api"
    input_sha = file_sha256(input_path)
    previous = _previous_job(state_file, output_path, input_sha, options.overwrite)
    nlp, backends = _pipeline(model, options)
    summary = BatchSummary(mode="file" if mode == "file" else "submit", state=str(state_file))
    state = BatchState(mode, str(model), str(input_path), input_sha)
    answered: set[str] = set()
    if previous is not None and previous.mode == "api" and mode == "api":
        # Submitted again: send only what the earlier batches did not answer.
        state.jobs = previous.jobs
        found, _ = gather_answers(state, backends)
        answered = {key for key, answer in found.items() if answer.content is not None}
    passes = (on_start, on_progress)
    recorded, seen = _record(nlp, backends, input_path, options, answered, passes)
    summary.already_answered = sum(b.stats.cached for b in backends.values()) + len(answered & seen)
    if request_file is not None:
        lines = [line for component in recorded.values() for line in component]
        data = b"".join(lines)
        write_atomic(request_file, data, overwrite=options.overwrite)
        state.request_files = [
            {"path": str(request_file), "sha256": sha256_of(data), "requests": len(lines)}
        ]
        summary.files.append(str(request_file))
        summary.requests = len(lines)
    else:
        _send(recorded, backends, state, summary, output_path, (max_requests, max_bytes))
    write_atomic(state_file, state.to_json(), overwrite=True)
    return summary


def _previous_job(
    state_file: Path, output_path: str | Path, input_sha: str, overwrite: bool
) -> BatchState | None:
    """The job submitted before for this OUTPUT and INPUT, to send only what it left; None to
    start a new one (with --overwrite, or when there is none)."""
    previous = BatchState.read(state_file) if state_file.exists() else None
    if previous is not None and (previous.input_sha256 != input_sha or overwrite):
        if not overwrite:
            raise DisagreeError(
                f"{state_file}: a batch job for another INPUT (it changed since that "
                "submit); collect it first, or pass --overwrite to start a new job"
            )
        previous = None
    if previous is None and Path(output_path).exists() and not overwrite:
        raise DisagreeError(f"{output_path}: exists; pass --overwrite to replace it")
    return previous


def _send(
    recorded: Mapping[str, list[bytes]],
    backends: Mapping[str, OpenAICompatibleModel],
    state: BatchState,
    summary: BatchSummary,
    output_path: str | Path,
    limits: tuple[int, int],
) -> None:
    """Upload each component's request lines as batches within `limits` (requests, bytes)."""
    state_file = state_path(output_path)
    number = len(state.jobs)
    for component, lines in recorded.items():
        client = BatchClient(backends[component])
        for chunk in split_requests(lines, *limits):
            number += 1
            data = b"".join(chunk)
            path = Path(f"{output_path}.batch-{number}.jsonl")
            file_id = client.upload(path.name, data)
            batch = client.create(file_id)
            # Written once the batch exists: a refused upload (a wrong key) leaves no file.
            write_atomic(path, data, overwrite=True)
            job = BatchJob(
                id=str(batch["id"]),
                component=component,
                request_file=str(path),
                sha256=sha256_of(data),
                requests=len(chunk),
                bytes=len(data),
                input_file_id=file_id,
                status=str(batch.get("status", "validating")),
            )
            state.jobs.append(job)
            summary.jobs.append(job)
            summary.files.append(str(path))
            summary.requests += len(chunk)
            # After each batch: an interrupted submit still knows the batches it created.
            write_atomic(state_file, state.to_json(), overwrite=True)


def collect(
    model: str | Path,
    input_path: str | Path,
    output_path: str | Path,
    options: PredictOptions | None = None,
    *,
    batch_outputs: Sequence[str | Path] = (),
    on_start: Callable[[PredictSummary], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    **settings: Any,
) -> BatchSummary:
    """Read the job's answers (from the Batch API, or from `batch_outputs`, the files
    `vllm run-batch` wrote) and write OUTPUT as `predict_file` does, with no request sent.
    Raises `BatchNotDone`, writing nothing, while a batch of the job is still running."""
    options = _checked(PredictOptions.of(options, settings))
    _check_paths(input_path, output_path, None, *batch_outputs)
    state_file = state_path(output_path)
    state = _job_to_collect(state_file, input_path, output_path, batch_outputs)
    nlp, backends = _pipeline(model, options)
    summary = BatchSummary(mode="collect", state=str(state_file))
    if batch_outputs:
        answers: dict[str, BatchAnswer] = {}
        for path in batch_outputs:
            with open(path, encoding="utf-8") as lines:
                read_answers(lines, str(path), answers)
        owners: dict[str, str] = {}
        missing = f"not in {', '.join(map(str, batch_outputs))} (the runner's output)"
    else:
        assert state is not None
        answers, owners = gather_answers(state, backends)
        summary.jobs = state.jobs
        missing = "not among the batch job's requests"
    summary.answered = sum(1 for a in answers.values() if a.content is not None)
    summary.failed = len(answers) - summary.answered
    for backend in backends.values():
        backend.offline = _Serve(backend, answers, owners, missing)
    # OUTPUT is the job's (submit refused one that existed): collecting again rewrites it, with
    # the same records. Without a state file, a runner's output is read into a new OUTPUT.
    writing = replace(options.loaded(), overwrite=options.overwrite or state is not None)
    try:
        summary.predict = predict_file(
            nlp, input_path, output_path, writing, on_start=on_start, on_progress=on_progress
        )
    finally:
        for backend in backends.values():
            backend.offline = None
    if state is not None:
        write_atomic(state_file, state.to_json(), overwrite=True)  # the statuses seen
    return summary


def _checked(options: PredictOptions) -> PredictOptions:
    """Refuse what a batch job cannot do: its place is taken by collecting again (`resume`),
    and its prompts are recorded and served in this process (`n_process`)."""
    if options.resume:
        raise OptionError("--batch and --resume exclude each other: collect again instead")
    if options.n_process != 1:
        raise OptionError("--batch and --n-process exclude each other: the provider runs the job")
    return options


def _job_to_collect(
    state_file: Path,
    input_path: str | Path,
    output_path: str | Path,
    batch_outputs: Sequence[str | Path],
) -> BatchState | None:
    """The job submitted for OUTPUT (None: a runner's output read without one), refused when
    there is nothing to collect or INPUT changed since."""
    state = BatchState.read(state_file) if state_file.exists() else None
    if state is None and not batch_outputs:
        raise DisagreeError(
            f"{state_file}: no batch job for {output_path}; run --batch submit (or --batch file "
            "PATH, then --batch collect --batch-output OUT) first"
        )
    if state is not None and state.input_sha256 != file_sha256(input_path):
        raise DisagreeError(
            f"{input_path}: changed since --batch submit (its SHA-256 differs from {state_file}'s)"
            "; collect with the INPUT you submitted, or submit again"
        )
    if state is not None and state.mode == "file" and not batch_outputs:
        raise DisagreeError(
            f"{state_file}: this job's requests were written for vllm run-batch "
            f"({', '.join(f['path'] for f in state.request_files)}); pass the runner's output "
            "with --batch-output OUT"
        )
    return state


# --- the recording pass and the serving pass ---------------------------------------------


def _pipeline(
    model: str | Path, options: PredictOptions
) -> tuple[Any, dict[str, OpenAICompatibleModel]]:
    """The pipeline, and its batch-capable LLM backends by component name."""
    nlp = load_pipeline(
        model, overrides=options.overrides, labels=options.labels, examples=options.examples
    )
    backends: dict[str, OpenAICompatibleModel] = {}
    for component in llm_components(nlp):
        if not isinstance(component.backend, OpenAICompatibleModel):
            raise DisagreeError(
                f"--batch: the LLM component {component.name!r} uses "
                f"{type(component.backend).__name__}; batch jobs go through "
                "disagree.OpenAICompatible.v1 only"
            )
        cache = getattr(nlp.get_pipe(component.name), "_cache", None)
        if getattr(cache, "_path", None) is not None:
            # It would keep the recording pass's empty answers, and serve them at collect.
            raise DisagreeError(
                f"--batch: the LLM component {component.name!r} has spacy-llm's own cache on "
                f"([components.{component.name}.cache] path); set that path to null: our "
                "response cache (on by default) keeps every answer"
            )
        backends[component.name] = component.backend
    if not backends:
        raise DisagreeError(
            f"--batch: {model} has no LLM component; batch jobs are for a spacy-llm config "
            "whose model is disagree.OpenAICompatible.v1"
        )
    return nlp, backends


def _record(
    nlp: Any,
    backends: Mapping[str, OpenAICompatibleModel],
    input_path: str | Path,
    options: PredictOptions,
    answered: set[str],
    passes: tuple[Callable[[PredictSummary], None] | None, Callable[[int], None] | None],
) -> tuple[dict[str, list[bytes]], set[str]]:
    """Run predict with the backends offline; the request lines of every prompt neither in the
    cache nor in `answered`, per component, in the order predict asked (duplicates once), and
    the keys of every prompt asked that the cache did not answer. `passes`: predict's on_start
    and on_progress."""
    found: dict[str, dict[str, bytes]] = {name: {} for name in backends}
    seen: set[str] = set()
    lock = threading.Lock()

    def recorder(backend: OpenAICompatibleModel, lines: dict[str, bytes]) -> Any:
        def offline(key: str, prompt: str) -> str:
            with lock:
                seen.add(key)
                if key not in answered and key not in lines:
                    lines[key] = request_line(key, backend.request_body(prompt))
            return failed_response(RECORDED)

        return offline

    for name, backend in backends.items():
        backend.offline = recorder(backend, found[name])
    on_start, on_progress = passes
    recording = replace(options.loaded(), overwrite=False)  # into a folder of its own
    try:
        with tempfile.TemporaryDirectory(prefix="disagree-batch-") as folder:
            recorded = Path(folder) / "recorded.jsonl"
            predict_file(
                nlp, input_path, recorded, recording, on_start=on_start, on_progress=on_progress
            )
    finally:
        for backend in backends.values():
            backend.offline = None
    return {name: list(lines.values()) for name, lines in found.items() if lines}, seen


class _Serve:
    """A backend's `offline` while collecting: the job's answer for each prompt, else why not."""

    def __init__(
        self,
        backend: OpenAICompatibleModel,
        answers: Mapping[str, BatchAnswer],
        owners: Mapping[str, str],
        missing: str,
    ) -> None:
        self.backend = backend
        self.answers = answers
        self.owners = owners
        self.missing = missing

    def __call__(self, key: str, prompt: str) -> str:
        backend = self.backend
        answer = self.answers.get(key)
        if answer is None or answer.content is None:
            backend.stats.add(failures=1)
            if answer is not None:
                return failed_response(answer.error or "no answer")
            owner = self.owners.get(key)
            if owner is None:
                return failed_response(
                    f"{self.missing}; was the config changed since the requests were written?"
                )
            return failed_response(f"{owner} without answering it; --batch submit sends it again")
        content = redact(answer.content)
        backend.stats.add(batched=1, constrained=int(backend.schema_form(prompt) is not None))
        backend.count_usage(answer.usage, batch=True)
        backend.cache.put(key, content)
        return content


# --- the files ---------------------------------------------------------------------------


def _check_paths(
    input_path: str | Path,
    output_path: str | Path,
    request_file: str | Path | None,
    *outputs_read: str | Path,
) -> None:
    if "-" in (str(input_path), str(output_path)):
        raise DisagreeError(
            "--batch needs INPUT and OUTPUT files, not '-': collect reads INPUT again, and the "
            "job's state is kept beside OUTPUT"
        )
    if not Path(input_path).is_file():
        raise DisagreeError(f"{input_path}: no such file")
    for path in outputs_read:
        if not Path(path).is_file():
            raise DisagreeError(f"--batch-output {path}: no such file")
    named: dict[str, str | Path] = {"OUTPUT": output_path}
    if request_file is not None:
        named["--batch file"] = request_file
    check_outputs(named, [input_path, *outputs_read])


# --- the Batch API -----------------------------------------------------------------------
