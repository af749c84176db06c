"""The Batch API of an OpenAI-compatible server, and the files of a batch job.

OpenAI's Batch API and vLLM's `vllm run-batch` read one request per line (`custom_id`,
`method`, `url`, `body`: `request_line`) and write one answer per line (`custom_id`,
`response: {status_code, request_id, body}`, `error`: `read_answer`). A job's state file
(`BatchState`: the batch ids, request files and their SHA-256, never a key) remembers it;
`BatchClient` makes the API's four calls on the backend's server with its headers, retrying as
the backend does. What runs predict's passes over a job lives in predict/batch.py.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests

from ..core.errors import DisagreeError
from ..core.redaction import redact
from .openai_compatible import (
    RETRY_STATUS,
    LLMSetupError,
    OpenAICompatibleModel,
    RedirectRefused,
    error_message,
    parse_retry_after,
    safe_url,
    send,
)

ENDPOINT = "/v1/chat/completions"


# OpenAI's limits on one batch's input file.
MAX_REQUESTS = 50_000


MAX_BYTES = 200_000_000


RUNNING = ("validating", "in_progress", "finalizing", "cancelling")


STATE_VERSION = 1


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


def read_answers(lines: Iterable[str], source: str, answers: dict[str, BatchAnswer]) -> None:
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


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def gather_answers(
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
                read_answers(client.lines(str(file_id)), f"batch {job.id}", answers)
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
                        f"{error_message(response)})"
                    )
                if status in (404, 405) and path in ("/files", "/batches"):
                    raise LLMSetupError(
                        f"{where}: HTTP {status}: this server has no Batch API; for vLLM, write "
                        "the requests with --batch file PATH, run `vllm run-batch -i PATH -o OUT`, "
                        "then --batch collect --batch-output OUT"
                    )
                if status not in RETRY_STATUS:
                    raise LLMSetupError(f"{where}: HTTP {status}: {error_message(response)}")
                reason = f"HTTP {status}"
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if attempt >= backend.max_retries:
                raise LLMSetupError(f"{where}: {reason} (after {attempt} retries)")
            time.sleep(backend.retry_delay(attempt, retry_after))
            attempt += 1
