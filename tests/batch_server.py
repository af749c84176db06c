"""A Batch-API server on 127.0.0.1 for the batch tests and benchmark.

It implements the endpoints OpenAI documents for batches — `POST /v1/files` (multipart,
`purpose=batch`), `GET /v1/files/{id}/content`, `POST /v1/batches`, `GET /v1/batches/{id}` —
with OpenAI's objects (`status`, `request_counts`, `output_file_id`, `error_file_id`, `errors`)
and its output and error lines. It validates an input file as OpenAI does (one model, unique
custom_ids, the batch's endpoint): a file that breaks a rule makes a `failed` batch.
A batch stays `in_progress` for its first `polls` retrievals, then answers each request with
`answer(body)`: a string is the chat answer, a `Fault` a failed line (in the error file, as
OpenAI writes failed requests). A batch whose number is in `expire` ends `expired` after
answering its first half; the rest go to the error file as `batch_expired`.
`POST /v1/chat/completions` answers too, and counts: a batch run must send none.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Fault:
    status: int = 500
    message: str = "The server had an error while processing your request."


Answer = Callable[[dict[str, Any]], "str | Fault"]


def chat_completion(content: str, number: int) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{number}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "test-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13},
    }


class BatchServer:
    def __init__(
        self,
        answer: Answer,
        *,
        api_key: str | None = None,
        polls: int = 0,
        expire: tuple[int, ...] = (),
    ) -> None:
        self.answer = answer
        self.api_key = api_key
        self.polls = polls
        self.expire = set(expire)
        self.lock = threading.Lock()
        self.files: dict[str, dict[str, Any]] = {}
        self.contents: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.retrievals: dict[str, int] = {}
        self.live_requests = 0  # POST /chat/completions
        self.live_bodies: list[dict[str, Any]] = []
        self.calls: list[str] = []  # "METHOD path", in order
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                server.handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                server.handle(self, "POST")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> BatchServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # --- HTTP --------------------------------------------------------------------------------

    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        path = handler.path
        with self.lock:
            self.calls.append(f"{method} {path}")
        if self.api_key is not None and handler.headers.get("Authorization") != (
            f"Bearer {self.api_key}"
        ):
            return self.send(handler, 401, {"error": {"message": "Incorrect API key provided"}})
        parts = path.strip("/").split("/")
        try:
            if method == "POST" and path == "/v1/files":
                return self.send(handler, 200, self.upload(handler.headers["Content-Type"], raw))
            if (
                method == "GET"
                and len(parts) == 4
                and parts[1] == "files"
                and parts[3] == "content"
            ):
                content = self.contents.get(parts[2])
                if content is None:
                    return self.send(handler, 404, {"error": {"message": "No such File object"}})
                return self.send(handler, 200, content, "application/octet-stream")
            if method == "POST" and path == "/v1/batches":
                return self.send(handler, 200, self.create(json.loads(raw)))
            if method == "GET" and len(parts) == 3 and parts[1] == "batches":
                batch = self.retrieve(parts[2])
                if batch is None:
                    return self.send(handler, 404, {"error": {"message": "No such batch"}})
                return self.send(handler, 200, batch)
            if method == "POST" and path == "/v1/chat/completions":
                body = json.loads(raw)
                with self.lock:
                    self.live_requests += 1
                    self.live_bodies.append(body)
                    number = self.live_requests
                reply = self.answer(body)
                if isinstance(reply, Fault):
                    return self.send(handler, reply.status, {"error": {"message": reply.message}})
                return self.send(handler, 200, chat_completion(reply, number))
        except ValueError as err:
            return self.send(handler, 400, {"error": {"message": str(err)}})
        return self.send(handler, 404, {"error": {"message": f"no route {method} {path}"}})

    @staticmethod
    def send(
        handler: BaseHTTPRequestHandler,
        status: int,
        payload: dict[str, Any] | bytes,
        content_type: str = "application/json",
    ) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    # --- the Batch API -----------------------------------------------------------------------

    def upload(self, content_type: str, raw: bytes) -> dict[str, Any]:
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + raw
        )
        fields: dict[str, tuple[str | None, bytes]] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            fields[str(name)] = (part.get_filename(), part.get_payload(decode=True) or b"")
        if fields.get("purpose", (None, b""))[1] != b"batch":
            raise ValueError("purpose must be batch")
        if "file" not in fields:
            raise ValueError("no file")
        filename, content = fields["file"]
        with self.lock:
            file_id = f"file-{len(self.files) + 1}"
            self.files[file_id] = {
                "id": file_id,
                "object": "file",
                "bytes": len(content),
                "created_at": int(time.time()),
                "filename": filename,
                "purpose": "batch",
            }
            self.contents[file_id] = content
        return self.files[file_id]

    def create(self, request: dict[str, Any]) -> dict[str, Any]:
        file_id = request.get("input_file_id")
        if file_id not in self.contents:
            raise ValueError(f"no file {file_id}")
        if request.get("completion_window") != "24h":
            raise ValueError("completion_window must be 24h")
        with self.lock:
            batch_id = f"batch_{len(self.batches) + 1}"
            lines = self.contents[file_id].decode().splitlines()
            self.batches[batch_id] = {
                "id": batch_id,
                "object": "batch",
                "endpoint": request.get("endpoint"),
                "errors": None,
                "input_file_id": file_id,
                "completion_window": "24h",
                "status": "validating",
                "output_file_id": None,
                "error_file_id": None,
                "created_at": int(time.time()),
                "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
                "metadata": None,
            }
            self.retrievals[batch_id] = 0
            return dict(self.batches[batch_id])

    def retrieve(self, batch_id: str) -> dict[str, Any] | None:
        with self.lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                return None
            if batch["status"] in ("validating", "in_progress"):
                self.retrievals[batch_id] += 1
                if self.retrievals[batch_id] > self.polls:
                    self.run(batch)
                else:
                    batch["status"] = "in_progress"
            return dict(batch)

    def run(self, batch: dict[str, Any]) -> None:
        """Answer the batch's requests (called with the lock held)."""
        lines = [json.loads(line) for line in self.contents[batch["input_file_id"]].splitlines()]
        problem = _invalid(lines, batch["endpoint"])
        if problem is not None:
            batch["status"] = "failed"
            batch["errors"] = {
                "object": "list",
                "data": [{"code": "invalid_request", "message": problem, "line": None}],
            }
            return
        number = int(batch["id"].split("_")[1])
        cut = len(lines) // 2 if number in self.expire else len(lines)
        output: list[str] = []
        errors: list[str] = []
        for index, line in enumerate(lines):
            request_id = f"batch_req_{batch['id']}_{index}"
            if index >= cut:
                errors.append(
                    _line(
                        request_id,
                        line["custom_id"],
                        None,
                        {
                            "code": "batch_expired",
                            "message": "This request could not be executed before the "
                            "completion window expired.",
                        },
                    )
                )
                continue
            reply = self.answer(line["body"])
            if isinstance(reply, Fault):
                response = {
                    "status_code": reply.status,
                    "request_id": f"req_{index}",
                    "body": {"error": {"message": reply.message, "type": "server_error"}},
                }
                errors.append(_line(request_id, line["custom_id"], response, None))
            else:
                response = {
                    "status_code": 200,
                    "request_id": f"req_{index}",
                    "body": chat_completion(reply, index),
                }
                output.append(_line(request_id, line["custom_id"], response, None))
        for kind, content in (("output_file_id", output), ("error_file_id", errors)):
            if content:
                file_id = f"file-{len(self.files) + 1}"
                data = "".join(content).encode()
                self.files[file_id] = {"id": file_id, "object": "file", "bytes": len(data)}
                self.contents[file_id] = data
                batch[kind] = file_id
        batch["status"] = "expired" if number in self.expire else "completed"
        batch["request_counts"] = {
            "total": len(lines),
            "completed": len(output),
            "failed": len(errors),
        }


def _line(request_id: str, custom_id: str, response: dict[str, Any] | None, error: Any) -> str:
    line = {"id": request_id, "custom_id": custom_id, "response": response, "error": error}
    return json.dumps(line) + "\n"


def _invalid(lines: list[dict[str, Any]], endpoint: str) -> str | None:
    """Why OpenAI would refuse this input file, or None."""
    ids = [line.get("custom_id") for line in lines]
    if len(set(ids)) != len(ids):
        return "custom_id values must be unique"
    models = {line.get("body", {}).get("model") for line in lines}
    if len(models) != 1:
        return "every request of a batch must name the same model"
    for line in lines:
        if line.get("method") != "POST" or line.get("url") != endpoint:
            return f"every request must be POST {endpoint}"
    return None
