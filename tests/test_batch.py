"""`predict --batch`: LLM prompts through batch jobs, against a real loopback Batch-API server
(`batch_server`: files upload/content, batches create/retrieve, a scripted failed line and an
expired batch), and vLLM's runner output read from a file written by hand in its format."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from batch_server import BatchServer, Fault
from conftest import ROOT, read_lines
from disagree_triage import predict_file
from disagree_triage.core.errors import DisagreeError
from disagree_triage.core.kinds import TaskKind
from disagree_triage.llm import batch_api
from disagree_triage.predict import batch
from llm_servers import GOOD, KEY_ENV, SECRET, write_config, write_corpus

N = 30
FAILS = "number 7 "  # the prompt of record 7 gets a failed line


def scripted(body):
    return Fault(500, "scripted failure") if FAILS in body["messages"][0]["content"] else GOOD


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def errors_by_text(path: Path) -> dict[str, str]:
    return {
        task["text"]: task["meta"]["llm_error"]
        for task in read_lines(path)
        if "llm_error" in task.get("meta", {})
    }


def test_round_trip_split_failed_line_expired_batch_and_resubmit(tmp_path, api_key):
    # 30 requests in batches of at most 8: 4 batches; batch 2 expires half-way.
    with BatchServer(scripted, api_key=SECRET, expire=(2,)) as server:
        config = write_config(tmp_path, server.base_url)
        corpus = write_corpus(tmp_path, N)
        out = tmp_path / "out.jsonl"
        sent = batch.submit(config, corpus, out, max_requests=8, annotator="llm")
        assert sent.requests == N and [job.id for job in sent.jobs] == [
            "batch_1",
            "batch_2",
            "batch_3",
            "batch_4",
        ]
        assert [job.requests for job in sent.jobs] == [8, 8, 8, 6]
        assert not out.exists()  # nothing to write before the answers
        state = json.loads(batch.state_path(out).read_text())
        assert [job["id"] for job in state["jobs"]] == ["batch_1", "batch_2", "batch_3", "batch_4"]
        for job in state["jobs"]:
            assert sha(Path(job["request_file"])) == job["sha256"]
        lines = [json.loads(line) for job in sent.jobs for line in open(job.request_file)]
        assert {(line["method"], line["url"]) for line in lines} == {
            ("POST", "/v1/chat/completions")
        }
        assert len({line["custom_id"] for line in lines}) == N

        got = batch.collect(config, corpus, out, annotator="llm")
        tasks = read_lines(out)
        # Every record accounted for, in input order: answered, or its error recorded.
        assert [t["text"] for t in tasks] == [json.loads(x)["text"] for x in open(corpus)]
        errors = errors_by_text(out)
        expired = {f"Apple opened store number {i} today." for i in range(12, 16)}
        assert set(errors) == {"Apple opened store number 7 today.", *expired}
        assert "HTTP 500: scripted failure" in errors["Apple opened store number 7 today."]
        assert all("batch_expired" in errors[text] for text in expired)
        for task in tasks:
            if task["text"] not in errors:
                assert [(s["text"], s["label"]) for s in task["spans"]] == [
                    ("Apple", "ORGANISATION")
                ]
        (stats,) = got.predict.backends
        assert (stats.requests, stats.batched, stats.failures) == (0, N - 5, 5)
        assert server.live_requests == 0
        first = sha(out)

        # A second collect changes nothing, and answers from the response cache.
        again = batch.collect(config, corpus, out, annotator="llm")
        assert sha(out) == first
        (stats,) = again.predict.backends
        assert (stats.requests, stats.cached, stats.batched) == (0, N - 5, 0)

        # Submitting again sends only the 5 without an answer; collect reads all 5 batches.
        resent = batch.submit(config, corpus, out, max_requests=8, annotator="llm")
        assert (resent.requests, resent.already_answered) == (5, N - 5)
        assert [job.id for job in resent.jobs] == ["batch_5"]
        batch.collect(config, corpus, out, annotator="llm")
        assert set(errors_by_text(out)) == {"Apple opened store number 7 today."}
        assert server.live_requests == 0
    # The key goes in a header to the server, and nowhere into the files beside OUTPUT.
    for path in tmp_path.iterdir():
        if path.is_file() and path.suffix in (".json", ".jsonl"):
            assert SECRET not in path.read_text()


def test_collect_writes_what_the_live_path_writes(tmp_path, api_key):
    """The same requests (bodies) and the same OUTPUT, byte for byte, as a live run."""
    with BatchServer(lambda body: GOOD, api_key=SECRET) as server:
        corpus = write_corpus(tmp_path, 12)
        live_dir, batch_dir = tmp_path / "live", tmp_path / "batch"
        live_dir.mkdir()
        batch_dir.mkdir()
        live_config = write_config(live_dir, server.base_url)
        predict_file(live_config, corpus, live_dir / "out.jsonl", annotator="llm")
        assert server.live_requests == 12
        config = write_config(batch_dir, server.base_url)
        sent = batch.submit(config, corpus, batch_dir / "out.jsonl", annotator="llm")
        batch.collect(config, corpus, batch_dir / "out.jsonl", annotator="llm")
        assert server.live_requests == 12  # none more
    bodies = [json.loads(line)["body"] for line in open(sent.jobs[0].request_file)]
    key = lambda body: json.dumps(body, sort_keys=True)  # noqa: E731
    assert sorted(bodies, key=key) == sorted(server.live_bodies, key=key)
    assert (batch_dir / "out.jsonl").read_bytes() == (live_dir / "out.jsonl").read_bytes()


def test_collect_before_the_batch_finished_writes_nothing(tmp_path, api_key, cli):
    with BatchServer(lambda body: GOOD, api_key=SECRET, polls=1) as server:
        config = write_config(
            tmp_path,
            server.base_url,
            prompt_price_per_million=2.0,
            completion_price_per_million=8.0,
            batch_prompt_price_per_million=1.0,
            batch_completion_price_per_million=4.0,
        )
        corpus = write_corpus(tmp_path, 6)
        out = tmp_path / "out.jsonl"
        result = cli("predict", config, corpus, out, "--batch", "submit")
        assert result.returncode == 0, result.stderr
        assert "batch_1" in result.stdout and "--batch collect" in result.stderr
        result = cli("predict", config, corpus, out, "--batch", "collect")
        assert result.returncode == 3
        assert "batch batch_1 is in_progress (0 of 6 requests done)" in result.stderr
        assert not out.exists()
        result = cli("predict", config, corpus, out, "--batch", "collect")
        assert result.returncode == 0, result.stderr
        assert "answered by the batch job" in result.stdout
        # The batch price, not the live one: 6 answers of 10 prompt and 3 completion tokens.
        assert f"${(60 * 1.0 + 18 * 4.0) / 1e6:,.4f}" in result.stdout
        assert len(read_lines(out)) == 6 and server.live_requests == 0


def test_a_changed_input_is_refused_at_collect(tmp_path, api_key):
    with BatchServer(lambda body: GOOD, api_key=SECRET) as server:
        config = write_config(tmp_path, server.base_url)
        corpus = write_corpus(tmp_path, 4)
        out = tmp_path / "out.jsonl"
        batch.submit(config, corpus, out)
        write_corpus(tmp_path, 5)
        with pytest.raises(batch.DisagreeError, match="changed since --batch submit"):
            batch.collect(config, corpus, out)
        assert not out.exists()


def test_a_wrong_key_is_one_clear_error_without_the_key(tmp_path, monkeypatch, cli):
    monkeypatch.setenv(KEY_ENV, "sk-wrong-0123456789abcdefWRONG")
    with BatchServer(lambda body: GOOD, api_key=SECRET) as server:
        config = write_config(tmp_path, server.base_url)
        corpus = write_corpus(tmp_path, 3)
        result = cli("predict", config, corpus, tmp_path / "out.jsonl", "--batch", "submit")
    assert result.returncode == 1
    assert "POST http://127.0.0.1" in result.stderr and "rejected the API key" in result.stderr
    assert "WRONG" not in result.stderr
    assert server.calls == ["POST /v1/files"]


def test_a_server_without_the_batch_api(tmp_path, api_key, cli):
    class NotFound(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            body = b'{"detail": "Not Found"}'
            self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = HTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        config = write_config(tmp_path, f"http://127.0.0.1:{httpd.server_address[1]}/v1")
        corpus = write_corpus(tmp_path, 3)
        result = cli("predict", config, corpus, tmp_path / "out.jsonl", "--batch", "submit")
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert result.returncode == 1
    assert "HTTP 404: this server has no Batch API" in result.stderr
    assert "--batch file PATH" in result.stderr and "Traceback" not in result.stderr


# --- vLLM: --batch file PATH, then --batch collect --batch-output OUT ---------------------

STRUCTURED = '{"entities": [{"text": "Apple", "label": "ORGANISATION"}]}'


def vllm_output_line(number: int, custom_id: str, content: str | None) -> str:
    """One line as vLLM's run_batch writes it (BatchRequestOutput.model_dump_json): a
    ChatCompletionResponse body, or a 400 without body and the error as a string."""
    if content is None:
        return json.dumps(
            {
                "id": f"vllm-{number:032x}",
                "custom_id": custom_id,
                "response": {
                    "status_code": 400,
                    "request_id": f"vllm-batch-{number:032x}",
                    "body": None,
                },
                "error": "This model's maximum context length is 4096 tokens.",
            }
        )
    body = {
        "id": f"chatcmpl-{number:032x}",
        "object": "chat.completion",
        "created": 1764000000,
        "model": "test-model",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": content,
                    "refusal": None,
                    "annotations": None,
                    "audio": None,
                    "function_call": None,
                    "tool_calls": [],
                    "reasoning_content": None,
                },
                "logprobs": None,
                "finish_reason": "stop",
                "stop_reason": None,
            }
        ],
        "service_tier": None,
        "system_fingerprint": None,
        "usage": {
            "prompt_tokens": 120,
            "total_tokens": 135,
            "completion_tokens": 15,
            "prompt_tokens_details": None,
        },
        "prompt_logprobs": None,
        "kv_transfer_params": None,
    }
    return json.dumps(
        {
            "id": f"vllm-{number:032x}",
            "custom_id": custom_id,
            "response": {
                "status_code": 200,
                "request_id": f"vllm-batch-{number:032x}",
                "body": body,
            },
            "error": None,
        }
    )


def test_vllm_request_file_and_runner_output(tmp_path, cli):
    # A local vLLM: no key, nothing listening (the run must not try to reach it).
    config = write_config(
        tmp_path,
        "http://127.0.0.1:9/v1",
        task={"@llm_tasks": "disagree.NER.v1"},
        api_key_env=None,
    )
    corpus = write_corpus(tmp_path, 5)
    out = tmp_path / "out.jsonl"
    requests_path = tmp_path / "requests.jsonl"
    result = cli("predict", config, corpus, out, "--batch", "file", requests_path)
    assert result.returncode == 0, result.stderr
    assert "vllm run-batch -i" in result.stderr
    lines = [json.loads(line) for line in requests_path.read_text().splitlines()]
    assert len(lines) == 5
    for line in lines:
        assert set(line) == {"custom_id", "method", "url", "body"}
        assert line["url"] == "/v1/chat/completions" and line["method"] == "POST"
        assert line["body"]["model"] == "test-model"
        # the task's JSON schema travels as response_format, as on the live path
        assert line["body"]["response_format"]["type"] == "json_schema"
    # collect before the runner ran: the state file says what to do
    result = cli("predict", config, corpus, out, "--batch", "collect")
    assert result.returncode == 1 and "--batch-output OUT" in result.stderr

    # The runner's output, in request order, the 4th line a failed one.
    answers = tmp_path / "answers.jsonl"
    answers.write_text(
        "\n".join(
            vllm_output_line(i, line["custom_id"], None if i == 3 else STRUCTURED)
            for i, line in enumerate(lines)
        )
        + "\n"
    )
    result = cli("predict", config, corpus, out, "--batch", "collect", "--batch-output", answers)
    assert result.returncode == 0, result.stderr
    tasks = read_lines(out)
    assert len(tasks) == 5
    texts = [json.loads(x)["text"] for x in open(corpus)]
    assert [t["text"] for t in tasks] == texts
    for i, task in enumerate(tasks):
        if i == 3:
            assert task["spans"] == []
            assert "HTTP 400: This model's maximum context length" in task["meta"]["llm_error"]
        else:
            assert [(s["text"], s["label"]) for s in task["spans"]] == [("Apple", "ORGANISATION")]
            assert "llm_error" not in task.get("meta", {})
    assert "1 records have meta.llm_error" in result.stderr


def test_batch_file_path_among_config_overrides():
    from disagree_triage.cli._batch import request_file_argument

    assert request_file_argument(["r.jsonl"]) == ("r.jsonl", [])
    assert request_file_argument(["--components.llm.model.max_tokens", "32", "r.jsonl"]) == (
        "r.jsonl",
        ["--components.llm.model.max_tokens", "32"],
    )
    assert request_file_argument(["--a.b=1", "r.jsonl", "--c.d", "x"]) == (
        "r.jsonl",
        ["--a.b=1", "--c.d", "x"],
    )
    assert request_file_argument(["--a.b", "1"]) == (None, ["--a.b", "1"])


def test_request_files_split_at_the_limits():
    lines = [b"x" * 10 + b"\n"] * 7
    assert [len(c) for c in batch_api.split_requests(lines, 3, 10_000)] == [3, 3, 1]
    assert [len(c) for c in batch_api.split_requests(lines, 100, 25)] == [2, 2, 2, 1]
    with pytest.raises(batch.DisagreeError, match="over the 5 bytes"):
        list(batch_api.split_requests(lines, 100, 5))


def test_batch_refuses_dask_and_resume(tmp_path, cli):
    """A batch job's answers come from the provider: --dask would have nothing to do, and
    --resume's place is taken by collecting again. Both are refused before anything is sent."""
    config = write_config(tmp_path, "http://127.0.0.1:9/v1")  # never contacted
    corpus = write_corpus(tmp_path, 2)
    out = tmp_path / "out.jsonl"
    for extra, words in ((["--dask", "local:1"], "--dask"), (["--resume"], "--resume")):
        result = cli("predict", config, corpus, out, "--batch", "submit", *extra)
        assert result.returncode == 2 and words in result.stderr and "exclude" in result.stderr
    assert not list(tmp_path.glob("out*"))


# --- spans: spacy-llm's SpanCat.v3 (the shipped config) through a batch job -----------------

SPANS_CONFIG = ROOT / "configs" / "spans-openai-compatible.cfg"
SPANS_TEXT = "Fans of the New York Yankees cheered in New York."
# SpanCat.v3's chain-of-thought answer: a team and, inside its name, a place (they overlap)
SPANS_REPLY = (
    "1. New York Yankees | True | ORG | a baseball team\n"
    "2. New York | True | LOC | a city, also inside the team's name\n"
    "3. cheered | False | ==NONE== | a verb"
)


def spans_overrides(base_url: str, cache: Path, key: str) -> dict[str, object]:
    return {
        "components.llm.model.base_url": base_url,
        "components.llm.model.model": "test-model",
        "components.llm.model.api_key_env": KEY_ENV,
        "components.llm.model.cache_path": str(cache),
        "components.llm.task.spans_key": key,
    }


def test_spancat_v3_batch_writes_the_live_runs_spans_manual(tmp_path, api_key):
    """The shipped SpanCat.v3 config, its span group renamed and named with --spans-key:
    collected as a batch, the same spans_manual file (overlaps kept) as the live run."""
    corpus = tmp_path / "in.jsonl"
    texts = [f"{SPANS_TEXT} Day {i}." for i in range(3)]
    corpus.write_text("".join(json.dumps({"text": text}) + "\n" for text in texts))
    live, batched = tmp_path / "live.jsonl", tmp_path / "batch.jsonl"
    with BatchServer(lambda body: SPANS_REPLY, api_key=SECRET) as server:
        settings = {"annotator": "llm", "spans": "", "spans_key": "places"}
        predict_file(
            SPANS_CONFIG,
            corpus,
            live,
            overrides=spans_overrides(server.base_url, tmp_path / "live.sqlite", "places"),
            **settings,
        )
        assert server.live_requests == 3
        overrides = spans_overrides(server.base_url, tmp_path / "batch.sqlite", "places")
        # A key the task does not write is refused before anything is sent or written.
        with pytest.raises(DisagreeError, match="places"):
            batch.submit(
                SPANS_CONFIG, corpus, batched, overrides=overrides, annotator="llm", spans_key="sc"
            )
        assert not batch.state_path(batched).exists() and not server.batches
        sent = batch.submit(SPANS_CONFIG, corpus, batched, overrides=overrides, **settings)
        assert sent.requests == 3
        got = batch.collect(SPANS_CONFIG, corpus, batched, overrides=overrides, **settings)
        assert server.live_requests == 3  # none more
    assert got.predict.kind is TaskKind.SPANS and got.predict.spans.key == "places"
    assert batched.read_bytes() == live.read_bytes()
    for task in read_lines(batched):
        assert task["_view_id"] == "spans_manual" and "llm_error" not in task.get("meta", {})
        assert sorted((s["start"], s["end"], s["label"]) for s in task["spans"]) == [
            (12, 20, "LOC"),
            (12, 28, "ORG"),
        ]
