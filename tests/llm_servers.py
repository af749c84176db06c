"""HTTP servers on 127.0.0.1 for the LLM tests.

`FaultServer` is a scripted OpenAI-compatible endpoint for what a real server will not do on
demand (429 storms with Retry-After, 500s, answers past the timeout, connection resets, bodies
that are not JSON, raw bytes that break HTTP itself, a server that goes away mid-run). It
counts requests in flight server-side. `LlamaCppServer` runs
llama-cpp-python's real OpenAI-compatible server on the SmolLM2 GGUF.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

RESET = "reset"  # close the connection without answering


def write_ner_config(path: Path, model: dict[str, Any], task: dict[str, Any] | None = None) -> Path:
    """A spacy-llm NER pipeline config (PERSON, ORGANISATION, DATE) with `model` as the
    [components.llm.model] block, e.g. {"@llm_models": "disagree.OpenAICompatible.v1", ...};
    the task is NER.v2 unless `task` gives the [components.llm.task] block."""
    task = task or {"@llm_tasks": "spacy.NER.v2"}
    task = {"labels": ["PERSON", "ORGANISATION", "DATE"], **task}
    task_lines = [f"{key} = {json.dumps(value)}" for key, value in task.items()]
    model_lines = [f"{key} = {json.dumps(value)}" for key, value in model.items()]
    lines = [
        "[nlp]",
        'lang = "en"',
        'pipeline = ["llm"]',
        "[components]",
        "[components.llm]",
        'factory = "llm"',
        "[components.llm.task]",
        *task_lines,
        "[components.llm.model]",
        *model_lines,
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Reply:
    status: int = 200
    content: str | None = None  # the chat answer; None with body for raw bodies
    body: bytes | None = None
    headers: dict[str, str] | None = None
    delay: float = 0.0
    raw: bytes | None = None  # the whole response as bytes (status line included); then close
    trickle: float = 0.0  # with raw: one byte every `trickle` seconds, as a stalling server,
    trickle_from: int = 0  # after the first `trickle_from` bytes, sent at once


Script = Callable[[int, dict[str, Any]], "Reply | str"]


def chat_body(content: str) -> bytes:
    return json.dumps(
        {
            "id": "x",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13},
        }
    ).encode()


class FaultServer:
    """`port` 0 picks a free one; a given port lets a test start the server "again"."""

    def __init__(self, script: Script, port: int = 0) -> None:
        self.script = script
        self.lock = threading.Lock()
        self.count = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.bodies: list[dict[str, Any]] = []
        self.headers_seen: list[dict[str, str]] = []
        self.paths: list[str] = []  # method and path of each request, e.g. "POST /v1/..."
        self.times: list[float] = []
        self.closing = threading.Lock()
        self.closed = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without this, Nagle's algorithm holds the
            # body until the client's delayed ACK (40 ms), which only keep-alive clients pay.
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:  # a Batch API upload is multipart
                    body = {}
                with server.lock:
                    server.count += 1
                    number = server.count
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    server.bodies.append(body)
                    server.headers_seen.append(dict(self.headers))
                    server.paths.append(f"{self.command} {self.path}")
                    server.times.append(time.monotonic())
                answered = False

                def answer() -> None:  # no longer in flight: its answer is on its way
                    nonlocal answered
                    if not answered:
                        answered = True
                        with server.lock:
                            server.in_flight -= 1

                try:
                    reply = server.script(number, body)
                    if reply == RESET:
                        self.connection.shutdown(socket.SHUT_RDWR)
                        self.close_connection = True
                        return
                    assert isinstance(reply, Reply)
                    time.sleep(reply.delay)
                    # Counted out before the answer is written: the client may send its next
                    # request the moment it has read it, before this thread would get here.
                    answer()
                    if reply.raw is not None and reply.trickle:
                        self.wfile.write(reply.raw[: reply.trickle_from])
                        for byte in reply.raw[reply.trickle_from :]:
                            self.wfile.flush()
                            time.sleep(reply.trickle)
                            self.wfile.write(bytes([byte]))
                    if reply.raw is not None:
                        self.wfile.write(b"" if reply.trickle else reply.raw)
                        self.wfile.flush()
                        self.connection.shutdown(socket.SHUT_RDWR)
                        self.close_connection = True
                        return
                    payload = (
                        reply.body if reply.body is not None else chat_body(reply.content or "")
                    )
                    self.send_response(reply.status)
                    for key, value in (reply.headers or {}).items():
                        self.send_header(key, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    answer()

            # A redirect of a POST with 301/302/303 comes back as a GET.
            do_GET = do_POST  # noqa: N815

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FaultServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.go_away()

    def go_away(self) -> None:
        """Stop listening, as a server that crashed: new connections are refused. Safe to call
        from a script (it runs in a handler thread) and more than once."""
        with self.closing:  # a second caller waits until the port is free
            if self.closed:
                return
            if self.thread.is_alive():
                self.httpd.shutdown()
            self.httpd.server_close()
            self.closed = True


# Ports for servers that bind some time after we pick the port (Label Studio migrates for a
# minute first): from a range below the kernel's ephemeral ports (32768-60999 on Linux), so that
# nothing binding port 0 meanwhile (our loopback servers, Dask's sockets) can take it, and a
# block of its own per pytest-xdist worker, so that two workers never pick the same one.
_PORTS_PER_WORKER = 400
_port_numbers = itertools.count()  # this worker's next port, as an offset in its block


def free_port() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    first = 20_000 + _PORTS_PER_WORKER * (int(worker) if worker.isdigit() else 0)
    for _ in range(_PORTS_PER_WORKER):
        port = first + next(_port_numbers) % _PORTS_PER_WORKER
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:  # taken by something else on this machine
                continue
            return port
    raise OSError(f"no free port in {first}-{first + _PORTS_PER_WORKER - 1}")


class LlamaCppServer:
    """`python -m llama_cpp.server` on 127.0.0.1, serving a GGUF file; stopped on exit."""

    def __init__(self, model_path: Path, *, n_ctx: int = 2048) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.args = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            str(n_ctx),
            "--model_alias",
            "smollm2",
        ]
        self.proc: subprocess.Popen[bytes] | None = None
        # llama.cpp logs a lot: a pipe nobody reads would fill up and stall the server.
        self.log = tempfile.TemporaryFile()

    def __enter__(self) -> LlamaCppServer:
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                err = self.log.read().decode(errors="replace")
                raise RuntimeError(f"llama_cpp.server exited: {err[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as answer:
                    if answer.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("llama_cpp.server did not start within 120 s")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


# --- the configs and corpora the LLM tests share ---------------------------------------

LABELS = {"PERSON", "ORGANISATION", "DATE"}
GOOD = "ORGANISATION: Apple\nPERSON:\nDATE:"
KEY_ENV = "DISAGREE_TEST_KEY"
SECRET = "sk-test-0123456789abcdefSECRET"


def write_config(
    tmp_path: Path, base_url: str, task: dict[str, Any] | None = None, **model: object
) -> Path:
    settings = {
        "model": "test-model",
        "base_url": base_url,
        "api_key_env": KEY_ENV,
        "max_concurrency": 4,
        "max_retries": 3,
        "timeout": 5,
        "backoff_base": 0.01,
        "backoff_max": 0.05,
        "context_length": 4096,
        # Each test its own cache: ports are reused between tests, so base URLs can repeat.
        "cache_path": str(tmp_path / "responses.sqlite"),
        **model,
    }
    return write_ner_config(
        tmp_path / "llm.cfg", {"@llm_models": "disagree.OpenAICompatible.v1", **settings}, task
    )


def write_server_config(
    tmp_path: Path, server: LlamaCppServer, task: dict[str, Any] | None = None, **model: object
) -> Path:
    """write_config for the real llama.cpp server: its model alias, no key, a small model's
    answer length, time enough for a CPU, two requests at once."""
    settings: dict[str, object] = {
        "model": "smollm2",
        "api_key_env": None,
        "max_tokens": 48,
        "timeout": 60,
        "max_concurrency": 2,
        **model,
    }
    return write_config(tmp_path, server.base_url, task, **settings)


def write_corpus(tmp_path: Path, n: int) -> Path:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        "".join(
            json.dumps({"text": f"Apple opened store number {i} today."}) + "\n" for i in range(n)
        )
    )
    return corpus
