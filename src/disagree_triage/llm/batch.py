"""LLM predictions through batch jobs: OpenAI's Batch API, or vLLM's offline runner.

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

import hashlib
import json
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from ..errors import DisagreeError
from ..outputs import check_outputs, write_atomic
from ..redaction import redact
from .failures import failed_response
from .openai_compatible import (
    RETRY_STATUS,
    LLMSetupError,
    OpenAICompatibleModel,
    RedirectRefused,
    _error_message,
    parse_retry_after,
    safe_url,
    send,
)

if TYPE_CHECKING:
    from ..predict import PredictSummary

ENDPOINT = "/v1/chat/completions"
# OpenAI's limits on one batch's input file.
MAX_REQUESTS = 50_000
MAX_BYTES = 200_000_000
RUNNING = ("validating", "in_progress", "finalizing", "cancelling")
STATE_VERSION = 1
MODES = ("submit", "collect", "file")
RECORDED = "recorded for a batch job"  # the answer of the recording pass (thrown away)


class BatchNotDone(DisagreeError):
    """`collect` before every batch of the job has finished: nothing is written."""


@dataclass
class BatchJob:
    """One batch of the Batch API, as the state file records it."""

    id: str
    component: str  # the LLM component whose backend sent it
    request_file: str
    sha256: str
    requests: int
    bytes: int
    input_file_id: str
    status: str = "validating"  # as last seen


@dataclass
class BatchState:
    """`OUTPUT.batch.json`: what `collect` needs to find the job's answers."""

    mode: str  # "api" (the Batch API) or "file" (a request file for vllm run-batch)
    model: str
    input: str
    input_sha256: str
    jobs: list[BatchJob] = field(default_factory=list)
    request_files: list[dict[str, Any]] = field(default_factory=list)  # mode "file"

    def to_json(self) -> bytes:
        data = {"version": STATE_VERSION, **asdict(self)}
        return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")

    @classmethod
    def read(cls, path: Path) -> BatchState:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.pop("version") != STATE_VERSION:
                raise ValueError("version")
            data["jobs"] = [BatchJob(**job) for job in data.get("jobs", [])]
            return cls(**data)
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise DisagreeError(
                f"{path}: not a batch state file written by `predict --batch` "
                f"({type(err).__name__}); remove it and submit again"
            ) from None


@dataclass
class BatchAnswer:
    content: str | None = None  # the chat answer, or None when the request failed
    error: str | None = None  # why it failed
    usage: dict[str, Any] | None = None


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
    *,
    request_file: str | Path | None = None,
    overwrite: bool = False,
    max_requests: int = MAX_REQUESTS,
    max_bytes: int = MAX_BYTES,
    overrides: dict[str, Any] | None = None,
    labels: str | Sequence[str] | None = None,
    examples: str | Path | None = None,
    **options: Any,
) -> BatchSummary:
    """Write the prompts of `predict` over `input_path` as Batch-API requests: to
    `request_file` only (for `vllm run-batch`), or else uploaded to the config's server as
    batches of at most `max_requests` lines and `max_bytes`. `options` are `predict_file`'s."""
    _check_paths(input_path, output_path, request_file)
    state_file = state_path(output_path)
    mode = "file" if request_file is not None else "api"
    previous = BatchState.read(state_file) if state_file.exists() else None
    input_sha = file_sha256(input_path)
    if previous is not None and (previous.input_sha256 != input_sha or overwrite):
        if not overwrite:
            raise DisagreeError(
                f"{state_file}: a batch job for another INPUT (it changed since that "
                "submit); collect it first, or pass --overwrite to start a new job"
            )
        previous = None
    if previous is None and Path(output_path).exists() and not overwrite:
        raise DisagreeError(f"{output_path}: exists; pass --overwrite to replace it")
    nlp, backends = _pipeline(model, overrides, labels, examples)
    summary = BatchSummary(mode="file" if mode == "file" else "submit", state=str(state_file))
    state = BatchState(mode, str(model), str(input_path), input_sha)
    answered: set[str] = set()
    if previous is not None and previous.mode == "api" and mode == "api":
        # Submitted again: send only what the earlier batches did not answer.
        state.jobs = previous.jobs
        found, _ = _gather(state, backends)
        answered = {key for key, answer in found.items() if answer.content is not None}
    recorded, seen = _record(nlp, backends, input_path, options, answered)
    summary.already_answered = sum(b.stats.cached for b in backends.values()) + len(answered & seen)
    if mode == "file":
        assert request_file is not None
        lines = [line for component in recorded.values() for line in component]
        data = b"".join(lines)
        write_atomic(request_file, data, overwrite=overwrite)
        state.request_files = [
            {"path": str(request_file), "sha256": _sha(data), "requests": len(lines)}
        ]
        summary.files.append(str(request_file))
        summary.requests = len(lines)
        write_atomic(state_file, state.to_json(), overwrite=True)
        return summary
    number = len(state.jobs)
    for component, lines in recorded.items():
        client = BatchClient(backends[component])
        for chunk in split_requests(lines, max_requests, max_bytes):
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
                sha256=_sha(data),
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
    write_atomic(state_file, state.to_json(), overwrite=True)
    return summary


def collect(
    model: str | Path,
    input_path: str | Path,
    output_path: str | Path,
    *,
    batch_outputs: Sequence[str | Path] = (),
    overrides: dict[str, Any] | None = None,
    labels: str | Sequence[str] | None = None,
    examples: str | Path | None = None,
    **options: Any,
) -> BatchSummary:
    """Read the job's answers (from the Batch API, or from `batch_outputs`, the files
    `vllm run-batch` wrote) and write OUTPUT as `predict_file` does, with no request sent.
    Raises `BatchNotDone`, writing nothing, while a batch of the job is still running."""
    from ..predict import predict_file

    _check_paths(input_path, output_path, None, *batch_outputs)
    state_file = state_path(output_path)
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
    nlp, backends = _pipeline(model, overrides, labels, examples)
    summary = BatchSummary(mode="collect", state=str(state_file))
    if batch_outputs:
        answers: dict[str, BatchAnswer] = {}
        for path in batch_outputs:
            with open(path, encoding="utf-8") as lines:
                _read_answers(lines, str(path), answers)
        owners: dict[str, str] = {}
        missing = f"not in {', '.join(map(str, batch_outputs))} (the runner's output)"
    else:
        assert state is not None
        answers, owners = _gather(state, backends)
        summary.jobs = state.jobs
        missing = "not among the batch job's requests"
    summary.answered = sum(1 for a in answers.values() if a.content is not None)
    summary.failed = len(answers) - summary.answered
    for backend in backends.values():
        backend.offline = _Serve(backend, answers, owners, missing)
    # OUTPUT is the job's (submit refused one that existed): collecting again rewrites it, with
    # the same records. Without a state file, a runner's output is read into a new OUTPUT.
    overwrite = bool(options.pop("overwrite", False)) or state is not None
    options.pop("resume", None)
    try:
        summary.predict = predict_file(nlp, input_path, output_path, overwrite=overwrite, **options)
    finally:
        for backend in backends.values():
            backend.offline = None
    if state is not None:
        write_atomic(state_file, state.to_json(), overwrite=True)  # the statuses seen
    return summary


# --- the recording pass and the serving pass ---------------------------------------------


def _pipeline(
    model: str | Path,
    overrides: dict[str, Any] | None,
    labels: str | Sequence[str] | None,
    examples: str | Path | None,
) -> tuple[Any, dict[str, OpenAICompatibleModel]]:
    """The pipeline, and its batch-capable LLM backends by component name."""
    from ..pipeline import load_pipeline
    from .checks import llm_components

    nlp = load_pipeline(model, overrides=overrides, labels=labels, examples=examples)
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
    options: dict[str, Any],
    answered: set[str],
) -> tuple[dict[str, list[bytes]], set[str]]:
    """Run predict with the backends offline; the request lines of every prompt neither in the
    cache nor in `answered`, per component, in the order predict asked (duplicates once), and
    the keys of every prompt asked that the cache did not answer."""
    from ..predict import predict_file

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
    options = {k: v for k, v in options.items() if k not in ("overwrite", "resume")}
    try:
        with tempfile.TemporaryDirectory(prefix="disagree-batch-") as folder:
            predict_file(nlp, input_path, Path(folder) / "recorded.jsonl", **options)
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


def request_line(key: str, body: dict[str, Any]) -> bytes:
    line = {"custom_id": key, "method": "POST", "url": ENDPOINT, "body": body}
    return (json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def split_requests(
    lines: Sequence[bytes], max_requests: int, max_bytes: int
) -> Iterator[list[bytes]]:
    """The request lines in files of at most `max_requests` lines and `max_bytes` bytes."""
    chunk: list[bytes] = []
    size = 0
    for line in lines:
        if len(line) > max_bytes:
            raise DisagreeError(
                f"one batch request is {len(line):,} bytes, over the {max_bytes:,} bytes a batch "
                "file may hold"
            )
        if chunk and (len(chunk) >= max_requests or size + len(line) > max_bytes):
            yield chunk
            chunk, size = [], 0
        chunk.append(line)
        size += len(line)
    if chunk:
        yield chunk


def _read_answers(lines: Iterable[str], source: str, answers: dict[str, BatchAnswer]) -> None:
    """Read Batch-API output or error lines (OpenAI's or vLLM's, the same shape) into
    `answers` by custom_id; an answer already read wins over an error for the same id (a
    request sent again after it failed)."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            key = data["custom_id"]
            if not isinstance(key, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise DisagreeError(
                f"{source}, line {number}: not a batch output line (a JSON object with a custom_id)"
            ) from None
        answer = read_answer(data, source)
        previous = answers.get(key)
        if previous is None or previous.content is None:
            answers[key] = answer


def read_answer(data: Mapping[str, Any], source: str) -> BatchAnswer:
    """One output line's answer, or why it has none: an `error` (OpenAI's {code, message},
    vLLM's string or error response), an HTTP status other than 200 (with the body's error
    message), or a body that is not a chat completion."""
    response = data.get("response")
    response = response if isinstance(response, dict) else {}
    status = response.get("status_code", 200 if response else None)
    body = response.get("body")
    error = data.get("error")
    if error is not None or status != 200:
        detail = _error_text(error) or _error_text(body) or "no detail"
        if isinstance(status, int) and status != 200:
            detail = f"HTTP {status}: {detail}"
        return BatchAnswer(error=redact(f"{source}: {detail}")[:300])
    try:
        content = body["choices"][0]["message"]["content"]  # type: ignore[index]
    except (KeyError, IndexError, TypeError):
        content = None
    if not isinstance(content, str):
        return BatchAnswer(error=f"{source}: the answer is not a chat completion")
    usage = body.get("usage") if isinstance(body, dict) else None
    return BatchAnswer(content=content, usage=usage if isinstance(usage, dict) else None)


def _error_text(error: Any) -> str:
    if error is None:
        return ""
    if isinstance(error, dict):
        inner = error.get("error", error)
        if isinstance(inner, dict):
            code, message = inner.get("code"), inner.get("message")
            return ": ".join(str(part) for part in (code, message) if part) or json.dumps(inner)
        return str(inner)
    return str(error)


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


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


def _gather(
    state: BatchState, backends: Mapping[str, OpenAICompatibleModel]
) -> tuple[dict[str, BatchAnswer], dict[str, str]]:
    """Every answer of the job's batches by custom_id, and the batch each request went in
    (for the message of one left unanswered). Raises BatchNotDone while one is running."""
    running = []
    retrieved: list[tuple[BatchJob, dict[str, Any]]] = []
    for job in state.jobs:
        backend = backends.get(job.component)
        if backend is None:
            raise DisagreeError(
                f"batch {job.id} was sent by the LLM component {job.component!r}, which the "
                "pipeline no longer has"
            )
        batch = BatchClient(backend).retrieve(job.id)
        job.status = str(batch.get("status"))
        if job.status in RUNNING:
            counts = batch.get("request_counts") or {}
            running.append(
                f"batch {job.id} is {job.status} ({counts.get('completed', 0)} of "
                f"{counts.get('total', job.requests)} requests done)"
            )
        retrieved.append((job, batch))
    if running:
        raise BatchNotDone(
            "; ".join(running) + "; nothing written: run --batch collect again later"
        )
    answers: dict[str, BatchAnswer] = {}
    owners: dict[str, str] = {}
    for job, batch in retrieved:
        client = BatchClient(backends[job.component])
        for file_field in ("output_file_id", "error_file_id"):
            file_id = batch.get(file_field)
            if file_id:
                _read_answers(client.lines(str(file_id)), f"batch {job.id}", answers)
        why = f"batch {job.id} ended {job.status}"
        errors = (batch.get("errors") or {}).get("data") if isinstance(batch, dict) else None
        if errors:
            why += ": " + "; ".join(_error_text(e) for e in errors[:3])
        for key in _custom_ids(job.request_file):
            owners.setdefault(key, why)
    return answers, owners


def _custom_ids(path: str) -> Iterator[str]:
    try:
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    yield str(json.loads(line)["custom_id"])
    except (OSError, ValueError, KeyError):
        return  # the request file is gone: the message says less


class BatchClient:
    """The Batch API's four calls (files upload and content, batches create and retrieve), on
    the backend's server with its headers, retrying as the backend does."""

    def __init__(self, backend: OpenAICompatibleModel) -> None:
        self.backend = backend
        self.session = requests.Session()

    def upload(self, name: str, data: bytes) -> str:
        response = self._call(
            "POST",
            "/files",
            files={"file": (name, data, "application/jsonl")},
            data={"purpose": "batch"},
        )
        return str(self._json(response, "/files", "file")["id"])

    def create(self, file_id: str) -> dict[str, Any]:
        body = {"input_file_id": file_id, "endpoint": ENDPOINT, "completion_window": "24h"}
        return self._json(self._call("POST", "/batches", json=body), "/batches", "batch")

    def retrieve(self, batch_id: str) -> dict[str, Any]:
        return self._json(self._call("GET", f"/batches/{batch_id}"), "/batches", "batch")

    def lines(self, file_id: str) -> Iterator[str]:
        response = self._call("GET", f"/files/{file_id}/content", stream=True)
        with response:
            for line in response.iter_lines(decode_unicode=False):
                yield line.decode("utf-8", errors="replace")

    def _json(self, response: requests.Response, path: str, kind: str) -> dict[str, Any]:
        """The answer's object: a dict with an id, of the `object` type expected where the
        server says (a server without the Batch API may answer 200 with something else)."""
        try:
            data = response.json()
        except ValueError:
            data = None
        if isinstance(data, dict) and "id" in data and data.get("object", kind) == kind:
            return data
        raise LLMSetupError(
            f"{safe_url(self.backend.base_url)}{path}: the answer is not a {kind} object of "
            "the Batch API; does this server have it? (for vLLM: --batch file PATH)"
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        backend = self.backend
        url = f"{backend.base_url}{path}"
        where = f"{method} {safe_url(url)}"
        headers = backend.auth_headers()
        # An upload or a download of up to 200 MB may take longer than one chat answer.
        timeout = (backend.timeout, max(backend.timeout, 600.0))
        attempt = 0
        while True:
            retry_after = None
            try:
                response = send(
                    self.session, method, url, headers=headers, timeout=timeout, **kwargs
                )
            except RedirectRefused as err:
                raise LLMSetupError(f"{where}: {err}") from None
            except requests.RequestException as err:
                reason = f"{type(err).__name__}"
            else:
                status = response.status_code
                if status < 400:
                    return response
                if status in (401, 403):
                    raise LLMSetupError(
                        f"{where}: the server rejected the API key (HTTP {status}: "
                        f"{_error_message(response)})"
                    )
                if status in (404, 405) and path in ("/files", "/batches"):
                    raise LLMSetupError(
                        f"{where}: HTTP {status}: this server has no Batch API; for vLLM, write "
                        "the requests with --batch file PATH, run `vllm run-batch -i PATH -o OUT`, "
                        "then --batch collect --batch-output OUT"
                    )
                if status not in RETRY_STATUS:
                    raise LLMSetupError(f"{where}: HTTP {status}: {_error_message(response)}")
                reason = f"HTTP {status}"
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if attempt >= backend.max_retries:
                raise LLMSetupError(f"{where}: {reason} (after {attempt} retries)")
            time.sleep(backend._retry_delay(attempt, retry_after))
            attempt += 1
