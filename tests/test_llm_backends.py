"""disagree.OpenAICompatible.v1 against scripted loopback servers (faults a real server will not
produce on demand), a real llama.cpp server, and disagree.LlamaCpp.v1 in-process."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (
    EXAMPLES,
    assert_valid_ner_manual,
    first_lines,
    needs_llama,
    needs_llama_server,
    read_lines,
)
from disagree_triage import predict_file
from disagree_triage.core.errors import DisagreeError
from disagree_triage.io.jsonl import partial_path
from disagree_triage.predict.assemble import assemble_pipeline
from llm_servers import (
    GOOD,
    KEY_ENV,
    LABELS,
    RESET,
    SECRET,
    FaultServer,
    LlamaCppServer,
    Reply,
    free_port,
    write_config,
    write_corpus,
    write_ner_config,
    write_server_config,
)


def run_predict(tmp_path, config, n=12, **kwargs):
    corpus = write_corpus(tmp_path, n)
    out = tmp_path / "out.jsonl"
    summary = predict_file(config, corpus, out, annotator="llm", **kwargs)
    return summary, read_lines(out)


def test_concurrency_is_seen_by_the_server(tmp_path, api_key):
    with FaultServer(lambda n, body: Reply(content=GOOD, delay=0.5)) as server:
        config = write_config(
            tmp_path,
            server.base_url,
            max_concurrency=8,
            prompt_price_per_million=2.0,
            completion_price_per_million=10.0,
        )
        summary, tasks = run_predict(tmp_path, config, n=33, batch_size=64)
    # Concurrency is counted where it happens, on the server; speed is for the benchmark.
    assert server.max_in_flight == 8
    assert server.count == 33
    for task in tasks:
        assert_valid_ner_manual(task, LABELS)
        assert [(s["text"], s["label"]) for s in task["spans"]] == [("Apple", "ORGANISATION")]
    (stats,) = summary.backends
    assert (stats.requests, stats.prompt_tokens, stats.completion_tokens) == (33, 330, 99)
    assert stats.cost == pytest.approx((330 * 2.0 + 99 * 10.0) / 1_000_000)
    # the key travels as a bearer token and nowhere else
    assert server.headers_seen[0]["Authorization"] == f"Bearer {SECRET}"
    assert server.bodies[0]["model"] == "test-model" and server.bodies[0]["temperature"] == 0.0


def test_429_retry_after_is_honoured(tmp_path, api_key):
    def script(n, body):
        if n <= 3:
            return Reply(
                status=429,
                body=b'{"error": {"message": "slow down"}}',
                headers={"Retry-After": "0.5"},
            )
        return Reply(content=GOOD)

    with FaultServer(script) as server:
        config = write_config(tmp_path, server.base_url, max_concurrency=1)
        summary, tasks = run_predict(tmp_path, config, n=3)
    assert len(tasks) == 3 and all(t["spans"] for t in tasks)
    gaps = [b - a for a, b in zip(server.times, server.times[1:], strict=False)]
    assert all(gap >= 0.45 for gap in gaps[:3])  # backoff alone would be ~0.01 s
    assert summary.backends[0].retries == 3 and summary.backends[0].failures == 0


@pytest.mark.parametrize(
    "fault",
    [
        Reply(status=500, body=b"internal error"),
        Reply(status=503, body=b"{}"),
        Reply(status=200, body=b"<html>bad gateway</html>"),
        Reply(status=200, body=b'{"choices": []}'),
        Reply(content=GOOD, delay=1.5),  # past the 0.5 s timeout
        RESET,
    ],
    ids=["500", "503", "not-json", "no-choices", "timeout", "reset"],
)
def test_transient_faults_are_retried_and_every_doc_is_written(tmp_path, api_key, fault):
    attempts: dict[str, int] = {}

    def script(n, body):
        # the first request succeeds (so the server is known to be reachable); after that the
        # first attempt at every prompt meets the fault, the retry an answer
        prompt = body["messages"][0]["content"]
        attempts[prompt] = attempts.get(prompt, 0) + 1
        return fault if n > 1 and attempts[prompt] == 1 else Reply(content=GOOD)

    with FaultServer(script) as server:
        config = write_config(tmp_path, server.base_url, timeout=0.5, max_concurrency=2)
        summary, tasks = run_predict(tmp_path, config, n=10)
    assert len(tasks) == 10
    assert all(t["spans"] for t in tasks), [
        (t["text"], t.get("meta")) for t in tasks if not t["spans"]
    ]
    assert summary.backends[0].retries == 9 and summary.backends[0].failures == 0
    assert not summary.llm_problems


def test_persistent_failure_is_recorded_per_doc(tmp_path, api_key):
    def script(n, body):
        return Reply(content=GOOD) if n == 1 else Reply(status=500, body=b"down")

    with FaultServer(script) as server:
        config = write_config(tmp_path, server.base_url, max_retries=2, max_concurrency=2)
        summary, tasks = run_predict(tmp_path, config, n=5)
    assert len(tasks) == 5  # never lose a doc
    failed = [t for t in tasks if "llm_error" in t.get("meta", {})]
    assert len(failed) == 4
    assert all(
        t["meta"]["llm_error"] == "request failed: HTTP 500 (after 2 retries)" for t in failed
    )
    assert all(not t["spans"] for t in failed)
    (backend,) = summary.llm_problems
    assert summary.llm_problems[backend] == 4 and summary.backends[0].failures == 4


def test_unparseable_answers_are_not_silent(tmp_path, api_key):
    answers = {1: GOOD, 2: "I am sorry, I cannot help with that.", 3: ""}

    with FaultServer(lambda n, body: Reply(content=answers.get(n, GOOD))) as server:
        config = write_config(tmp_path, server.base_url, max_concurrency=1)
        summary, tasks = run_predict(tmp_path, config, n=4, save_io=True)
    errors = [t.get("meta", {}).get("llm_error") for t in tasks]
    assert errors == [
        None,
        "unparseable answer: 'I am sorry, I cannot help with that.'",
        "empty answer",
        None,
    ]
    assert tasks[1]["llm_io"]["llm"]["response"] == ["I am sorry, I cannot help with that."]
    assert "Apple opened store number 1" in tasks[1]["llm_io"]["llm"]["prompt"][0]
    assert sum(summary.llm_problems.values()) == 2


def test_second_run_sends_no_request(tmp_path, api_key):
    with FaultServer(lambda n, body: Reply(content=GOOD)) as server:
        config = write_config(tmp_path, server.base_url, cache_path=str(tmp_path / "cache.sqlite"))
        corpus = write_corpus(tmp_path, 6)
        predict_file(config, corpus, tmp_path / "a.jsonl", annotator="llm")
        assert server.count == 6
        summary = predict_file(config, corpus, tmp_path / "b.jsonl", annotator="llm")
        assert server.count == 6
        assert summary.backends[0].cached == 6 and summary.backends[0].requests == 0
        # another model name is another answer: no stale cache hit
        other = write_config(
            tmp_path,
            server.base_url,
            model="other-model",
            cache_path=str(tmp_path / "cache.sqlite"),
        )
        predict_file(other, corpus, tmp_path / "c.jsonl", annotator="llm")
        assert server.count == 12
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert SECRET.encode() not in (tmp_path / "cache.sqlite").read_bytes()


def test_resume_after_crash_sends_only_unfinished_prompts(tmp_path, api_key):
    state = {"down": True}

    def script(n, body):
        if state["down"] and n > 6:
            return Reply(status=401, body=b'{"error": {"message": "key revoked"}}')
        return Reply(content=GOOD)

    with FaultServer(script) as server:
        config = write_config(tmp_path, server.base_url, max_concurrency=1)
        corpus = write_corpus(tmp_path, 15)
        out = tmp_path / "out.jsonl"
        with pytest.raises(DisagreeError, match="rejected the API key"):
            predict_file(config, corpus, out, annotator="llm", batch_size=3)
        assert len(partial_path(out).read_text().splitlines()) == 6
        state["down"] = False
        sent_before = server.count
        summary = predict_file(config, corpus, out, annotator="llm", batch_size=3, resume=True)
        assert server.count - sent_before == 9
    assert summary.already_done == 6 and summary.written == 9
    assert len(read_lines(out)) == 15


def test_missing_key_fails_before_any_request(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with FaultServer(lambda n, body: Reply(content=GOOD)) as server:
        config = write_config(tmp_path, server.base_url)
        with pytest.raises(DisagreeError, match=f"{KEY_ENV} is not set"):
            run_predict(tmp_path, config, n=3)
        assert server.count == 0
    assert (
        not (tmp_path / "out.jsonl").exists() and not partial_path(tmp_path / "out.jsonl").exists()
    )


def test_rejected_key_is_one_line_without_the_key(tmp_path, api_key, disagree_cmd):
    echo = json.dumps({"error": {"message": f"Incorrect API key provided: {SECRET}"}}).encode()
    with FaultServer(lambda n, body: Reply(status=401, body=echo)) as server:
        config = write_config(tmp_path, server.base_url)
        corpus = write_corpus(tmp_path, 3)
        out = tmp_path / "out.jsonl"
        result = subprocess.run(
            disagree_cmd + ["predict", str(config), str(corpus), str(out)],
            capture_output=True,
            text=True,
        )
    assert result.returncode == 1
    assert "rejected the API key from DISAGREE_TEST_KEY (HTTP 401" in result.stderr
    assert SECRET not in result.stderr and SECRET[:8] not in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists() and not partial_path(out).exists()
    assert server.count == 1  # the first request goes alone: one error, not a burst


def test_unknown_model_is_a_clear_error(tmp_path, api_key):
    body = b'{"error": {"message": "The model `nope` does not exist"}}'
    with FaultServer(lambda n, b: Reply(status=404, body=body)) as server:
        config = write_config(tmp_path, server.base_url, model="nope")
        with pytest.raises(DisagreeError, match="does not serve the model 'nope'"):
            run_predict(tmp_path, config, n=3)


def test_unreachable_server_is_a_clear_error(tmp_path, api_key):
    port = free_port()  # nothing listens there
    config = write_config(tmp_path, f"http://127.0.0.1:{port}/v1")
    start = time.monotonic()
    with pytest.raises(DisagreeError, match="no usable answer on the first request"):
        run_predict(tmp_path, config, n=3)
    # One retry, not max_retries rounds of backoff: a generous bound against a slow machine.
    assert time.monotonic() - start < 30


def test_building_the_pipeline_touches_no_network(tmp_path, monkeypatch, api_key):
    def refuse(*args, **kwargs):
        raise AssertionError("network access while building the pipeline")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    nlp = assemble_pipeline(Path("configs/openai.cfg").resolve())
    assert nlp.pipe_names == ["llm"]
    nlp = assemble_pipeline(write_config(tmp_path, "http://127.0.0.1:9/v1"))
    assert nlp.pipe_names == ["llm"]


def test_assemble_cli_overrides_and_env_file(tmp_path, disagree_cmd):
    with FaultServer(lambda n, body: Reply(content=GOOD)) as server:
        config = write_config(tmp_path, "http://127.0.0.1:9/v1")
        env = tmp_path / "secrets.env"
        env.write_text(f"{KEY_ENV}={SECRET}\n")
        pipeline = tmp_path / "pipeline"
        result = subprocess.run(
            disagree_cmd
            + [
                "assemble",
                str(config),
                str(pipeline),
                "--env-file",
                str(env),
                "--components.llm.model.base_url",
                server.base_url,
            ],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        assert server.base_url in (pipeline / "config.cfg").read_text()
        assert SECRET not in (pipeline / "config.cfg").read_text()
        corpus = write_corpus(tmp_path, 2)
        out = tmp_path / "o.jsonl"
        result = subprocess.run(
            disagree_cmd + ["predict", str(pipeline), str(corpus), str(out)],
            capture_output=True,
            text=True,
            env={**__import__("os").environ, KEY_ENV: SECRET},
        )
        assert result.returncode == 0, result.stderr
        assert server.count == 2
        assert SECRET not in out.read_text()


def test_assemble_cli_reports_bad_config(tmp_path, disagree_cmd):
    config = write_ner_config(tmp_path / "bad.cfg", {"@llm_models": "spacy.NoSuchModel.v9"})
    result = subprocess.run(
        disagree_cmd + ["assemble", str(config), str(tmp_path / "p")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {config}") and "Traceback" not in result.stderr


# --- a real local LLM ------------------------------------------------------------------------


@needs_llama
def test_embedded_llamacpp_through_local_cfg(tmp_path):
    config = Path("configs/local.cfg").resolve()
    out = tmp_path / "llm.jsonl"
    summary = predict_file(config, EXAMPLES / "news.jsonl", out, annotator="llm", batch_size=8)
    tasks = read_lines(out)
    assert len(tasks) == 32
    # four batches of 8, one model load
    from disagree_triage.llm import llamacpp

    assert len(llamacpp._loaded) == 1
    for task in tasks:
        assert_valid_ner_manual(task, LABELS)
    assert sum(summary.entities.values()) >= 10  # weak, but it finds entities
    assert summary.backends[0].requests == 32
    again = tmp_path / "again.jsonl"
    summary = predict_file(config, EXAMPLES / "news.jsonl", again, annotator="llm")
    assert summary.backends[0].requests == 0 and summary.backends[0].cached == 32
    assert again.read_bytes() == out.read_bytes()


@needs_llama_server
def test_real_llama_cpp_server_through_openai_compatible(tmp_path):
    from disagree_triage.llm.llamacpp import bundled_model_path

    with LlamaCppServer(bundled_model_path()) as server:
        config = write_server_config(tmp_path, server)
        corpus = first_lines(EXAMPLES / "news.jsonl", 6, tmp_path / "corpus.jsonl")
        out = tmp_path / "out.jsonl"
        summary = predict_file(config, corpus, out, annotator="llm-server", save_io=True)
    tasks = read_lines(out)
    assert len(tasks) == 6
    for task in tasks:
        assert_valid_ner_manual(task, LABELS)
        assert task["llm_io"]["llm"]["response"][0]  # a real answer came back
    stats = summary.backends[0]
    assert stats.requests == 6 and stats.failures == 0 and stats.completion_tokens > 0


def test_dotenv_in_working_directory_is_loaded(tmp_path, monkeypatch, disagree_cmd):
    monkeypatch.delenv(KEY_ENV, raising=False)
    (tmp_path / ".env").write_text(f"{KEY_ENV}={SECRET}\n")
    with FaultServer(lambda n, body: Reply(content=GOOD)) as server:
        config = write_config(tmp_path, server.base_url)
        corpus = write_corpus(tmp_path, 2)
        result = subprocess.run(
            disagree_cmd + ["predict", str(config), str(corpus), "out.jsonl"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
    assert result.returncode == 0, result.stderr
    assert server.headers_seen[0]["Authorization"] == f"Bearer {SECRET}"
    assert SECRET not in result.stderr and SECRET not in (tmp_path / "out.jsonl").read_text()
