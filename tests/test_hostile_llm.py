"""The LLM backend in a hostile world (issue 13, "Hardening"): a server that dies mid-run, one
that echoes the API key back in every form, HTTP broken in ways real servers will not show on
demand, and setup mistakes that used to end in a traceback.

Servers are scripted on 127.0.0.1 (`llm_servers.FaultServer`); backoff settings are tiny, so
each scenario takes about a second.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import assert_valid_ner_manual, read_lines
from disagree_triage import predict_file
from disagree_triage.cli import app
from disagree_triage.core.errors import DisagreeError
from disagree_triage.io.jsonl import partial_path
from llm_servers import (
    GOOD,
    KEY_ENV,
    LABELS,
    RESET,
    FaultServer,
    Reply,
    chat_body,
    write_config,
    write_corpus,
)

CANARY = "sk-canary-Zq8Wm3Xr7Tb2Nc5Vh9Jk4Lp6Yd1"
DOC_NUMBER = re.compile(r"store number (\d+) today")


def doc_number(body: dict) -> int:
    """Which document of `write_corpus` a request is about."""
    match = DOC_NUMBER.search(body["messages"][0]["content"])
    assert match is not None
    return int(match.group(1))


def texts(path: Path) -> list[str]:
    return [task["text"] for task in read_lines(path)]


def corpus_texts(n: int) -> list[str]:
    return [f"Apple opened store number {i} today." for i in range(n)]


def failed(tasks: list[dict]) -> list[dict]:
    return [task for task in tasks if "llm_error" in (task.get("meta") or {})]


def run_cli(disagree_cmd: list[str], *args: object, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        disagree_cmd + [str(arg) for arg in args], capture_output=True, text=True, **kwargs
    )


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


# --- item 3: a server that goes away, and --resume of the documents it failed ----------------


def dies_after(answers: int, holder: dict) -> object:
    """A script: `answers` good answers, then the server goes away (refuses connections)."""

    def script(n: int, body: dict) -> Reply | str:
        if n > answers:
            if n == answers + 1:
                threading.Thread(target=holder["server"].go_away).start()
            return RESET
        holder.setdefault("answered", []).append(doc_number(body))
        return Reply(content=GOOD)

    return script


@pytest.mark.usefixtures("api_key")
def test_a_server_gone_mid_run_stops_the_run_and_resume_asks_only_what_is_missing(tmp_path):
    corpus = write_corpus(tmp_path, 40)
    out = tmp_path / "out.jsonl"
    from disagree_triage.llm.openai_compatible import GONE_AFTER

    holder: dict = {}
    with FaultServer(dies_after(10, holder)) as server:
        holder["server"] = server
        config = write_config(tmp_path, server.base_url, max_concurrency=2, max_retries=2)
        start = time.monotonic()
        with pytest.raises(DisagreeError, match="the server stopped answering") as stopped:
            predict_file(config, corpus, out, annotator="llm", batch_size=4)
        elapsed = time.monotonic() - start
    # GONE_AFTER documents in a row, not 30 documents of retries; bound generous for slow CI.
    assert elapsed < 20, elapsed
    assert f"{GONE_AFTER} documents in a row" in str(stopped.value)
    assert "--resume" in str(stopped.value) and "\n" not in str(stopped.value)
    partial = read_lines(partial_path(out))
    assert 0 < len(partial) < 40
    assert texts(partial_path(out)) == corpus_texts(40)[: len(partial)]

    asked_again: list[int] = []

    def healthy(n: int, body: dict) -> Reply:
        asked_again.append(doc_number(body))
        return Reply(content=GOOD)

    with FaultServer(healthy, port=server.port) as again:
        summary = predict_file(config, corpus, out, annotator="llm", batch_size=4, resume=True)
        reference = tmp_path / "reference.jsonl"
        predict_file(config, corpus, reference, annotator="llm", batch_size=4)
        assert again.count == len(asked_again)
    # Exactly what had no answer: the failed documents of the .partial and those never reached;
    # what the dead server did answer comes from the .partial or the cache.
    assert sorted(asked_again) == sorted(set(range(40)) - set(holder["answered"]))
    assert summary.already_done == len(partial) - len(failed(partial))
    assert out.read_bytes() == reference.read_bytes()  # in input order, each text once
    assert not failed(read_lines(out))


@pytest.mark.usefixtures("api_key")
def test_after_a_stop_the_same_model_probes_the_server_again(tmp_path):
    from disagree_triage.llm.openai_compatible import LLMSetupError, make_openai_compatible

    holder: dict = {}
    prompts = [f"store number {i} today" for i in range(8)]
    with FaultServer(dies_after(1, holder)) as server:
        holder["server"] = server
        model = make_openai_compatible(
            "test-model", server.base_url, KEY_ENV, max_retries=1, backoff_base=0.01, cache=False
        )
        with pytest.raises(LLMSetupError, match="the server stopped answering"):
            model.complete_all(prompts)
    with FaultServer(lambda n, body: Reply(content=GOOD), port=server.port) as again:
        assert model.complete_all(prompts[:3]) == [GOOD] * 3
    assert again.count == 3


@pytest.mark.usefixtures("api_key")
def test_resume_asks_again_exactly_the_documents_that_failed(tmp_path):
    broken = {3, 17, 18, 39}
    state = {"healthy": False}
    asked: list[int] = []

    def script(n: int, body: dict) -> Reply:
        number = doc_number(body)
        asked.append(number)
        if not state["healthy"] and number in broken:
            return Reply(status=500, body=b"down")
        return Reply(content=GOOD)

    corpus = write_corpus(tmp_path, 40)
    out = tmp_path / "out.jsonl"
    with FaultServer(script) as server:
        config = write_config(tmp_path, server.base_url, max_retries=1)
        predict_file(config, corpus, out, annotator="llm", batch_size=8)
        first = read_lines(out)
        assert {doc_number_of(task) for task in failed(first)} == broken
        state["healthy"] = True
        asked.clear()
        summary = predict_file(config, corpus, out, annotator="llm", batch_size=8, resume=True)
        assert sorted(asked) == sorted(broken)  # the failed ones, each once, nothing else
        reference = tmp_path / "reference.jsonl"
        predict_file(config, corpus, reference, annotator="llm", batch_size=8)
    assert (summary.already_done, summary.written) == (36, 4)
    assert out.read_bytes() == reference.read_bytes()
    assert not partial_path(out).exists()


def doc_number_of(task: dict) -> int:
    match = DOC_NUMBER.search(task["text"])
    assert match is not None
    return int(match.group(1))


@pytest.mark.usefixtures("api_key")
def test_resume_with_a_repeated_text_keeps_each_input_once_in_order(tmp_path):
    # Document 3 appears twice; its first request fails, the second (the repeat) is answered.
    seen: dict[int, int] = {}

    def script(n: int, body: dict) -> Reply:
        number = doc_number(body)
        seen[number] = seen.get(number, 0) + 1
        if number == 3 and seen[number] == 1:
            return Reply(status=500, body=b"down")
        return Reply(content=GOOD)

    lines = [json.dumps({"text": text}) for text in corpus_texts(8)]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join([*lines, lines[3], lines[0]]) + "\n")
    out = tmp_path / "out.jsonl"
    with FaultServer(script) as server:
        config = write_config(tmp_path, server.base_url, max_retries=0, max_concurrency=1)
        predict_file(config, corpus, out, annotator="llm")
        assert [doc_number_of(t) for t in failed(read_lines(out))] == [3]
        predict_file(config, corpus, out, annotator="llm", resume=True)
        reference = tmp_path / "reference.jsonl"
        predict_file(config, corpus, reference, annotator="llm")
    assert out.read_bytes() == reference.read_bytes()
    assert texts(out) == [json.loads(line)["text"] for line in [*lines, lines[3], lines[0]]]


@pytest.mark.usefixtures("api_key")
def test_resume_without_failures_leaves_the_output_as_an_uninterrupted_run(tmp_path):
    state = {"down": True}

    def script(n: int, body: dict) -> Reply:
        if state["down"] and n > 9:
            return Reply(status=401, body=b'{"error": {"message": "key revoked"}}')
        return Reply(content=GOOD)

    corpus = write_corpus(tmp_path, 20)
    out = tmp_path / "out.jsonl"
    with FaultServer(script) as server:
        config = write_config(tmp_path, server.base_url, max_concurrency=1)
        with pytest.raises(DisagreeError, match="rejected the API key"):
            predict_file(config, corpus, out, annotator="llm", batch_size=3)
        state["down"] = False
        predict_file(config, corpus, out, annotator="llm", batch_size=3, resume=True)
        reference = tmp_path / "reference.jsonl"
        predict_file(config, corpus, reference, annotator="llm", batch_size=3)
    assert out.read_bytes() == reference.read_bytes()


@pytest.mark.usefixtures("api_key")
def test_server_gone_through_the_cli_is_one_line_then_resume_completes(tmp_path, disagree_cmd):
    corpus = write_corpus(tmp_path, 40)
    out = tmp_path / "out.jsonl"
    holder: dict = {}
    with FaultServer(dies_after(6, holder)) as server:
        holder["server"] = server
        config = write_config(tmp_path, server.base_url, max_concurrency=2, max_retries=2)
        result = run_cli(disagree_cmd, "predict", config, corpus, out, "--batch-size", 4)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = error_lines(result.stderr)
    assert "the server stopped answering" in line and "--resume" in line
    assert partial_path(out).exists() and not out.exists()
    with FaultServer(lambda n, body: Reply(content=GOOD), port=server.port):
        result = run_cli(disagree_cmd, "predict", config, corpus, out, "--resume")
    assert result.returncode == 0, result.stderr
    assert texts(out) == corpus_texts(40) and not failed(read_lines(out))


# --- item 9: HTTP faults a real server will not show on demand --------------------------------

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
# name: (the fault, how it ends: "transient" is retried, so a document whose first attempt meets
# it is still answered; "lasting" is recorded at once; "harmless" costs nothing)
FAULTS: dict[str, tuple[Reply, str]] = {
    "truncated-body": (
        Reply(raw=HEAD + b"Content-Length: 500\r\n\r\n" + chat_body(GOOD)[:40]),
        "transient",
    ),
    "broken-chunked-body": (
        Reply(raw=HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"),
        "transient",
    ),
    "gzip-header-plain-body": (
        Reply(body=chat_body(GOOD), headers={"Content-Encoding": "gzip"}),
        "lasting",
    ),
    "redirect-loop": (
        Reply(status=307, body=b"", headers={"Location": "/v1/chat/completions"}),
        "transient",  # once: one redirect, then the answer; always: a loop
    ),
    "usage-not-numbers": (
        Reply(
            body=json.dumps(
                {
                    "choices": [{"message": {"content": GOOD}}],
                    "usage": {"prompt_tokens": "ten", "completion_tokens": [3]},
                }
            ).encode()
        ),
        "harmless",
    ),
    "usage-infinite": (
        Reply(
            body=b'{"choices": [{"message": {"content": "ORGANISATION: Apple"}}], '
            b'"usage": {"prompt_tokens": Infinity, "completion_tokens": -5}}'
        ),
        "harmless",
    ),
    "retry-after-inf": (
        Reply(status=429, body=b"{}", headers={"Retry-After": "inf"}),
        "transient",
    ),
    "retry-after-year-9999": (
        Reply(status=503, body=b"{}", headers={"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT"}),
        "transient",
    ),
    "json-nested-100k-deep": (Reply(body=b"[" * 100_000 + b"]" * 100_000), "transient"),
    "body-not-utf8": (Reply(body=b"\xff\xfe\xfa\x00{"), "transient"),
    "empty-body": (Reply(body=b""), "transient"),
}


def fault_script(fault: Reply, always: bool) -> object:
    """Every request meets `fault` (`always`), or the first request for each document does."""
    attempts: dict[int, int] = {}
    lock = threading.Lock()

    def script(n: int, body: dict) -> Reply:
        number = doc_number(body)
        with lock:
            attempts[number] = attempts.get(number, 0) + 1
            first = attempts[number] == 1
        return fault if always or first else Reply(content=GOOD)

    return script


@pytest.mark.usefixtures("api_key")
@pytest.mark.parametrize("always", [False, True], ids=["first-attempt", "every-attempt"])
@pytest.mark.parametrize("name", list(FAULTS))
def test_http_faults_leave_every_document_accounted_for(tmp_path, name, always):
    fault, kind = FAULTS[name]
    # The cap is a setting of its own (default 60 s); here it is short, to keep the test short.
    cap = {"retry_after_max": 0.05} if name.startswith("retry-after") else {}
    with FaultServer(fault_script(fault, always)) as server:
        config = write_config(tmp_path, server.base_url, max_retries=2, timeout=5, **cap)
        corpus = write_corpus(tmp_path, 40)
        out = tmp_path / "out.jsonl"
        start = time.monotonic()
        summary = predict_file(config, corpus, out, annotator="llm")
        elapsed = time.monotonic() - start
    assert elapsed < 60, elapsed  # a capped Retry-After, not 300 s a retry
    tasks = read_lines(out)
    assert [t["text"] for t in tasks] == corpus_texts(40)
    for task in tasks:
        assert_valid_ner_manual(task, LABELS)
        assert task["spans"] or failed([task]), task
    answered = kind == "harmless" or (kind == "transient" and not always)
    assert len(failed(tasks)) == (0 if answered else 40), failed(tasks)[:1]
    if name.startswith("retry-after"):
        assert summary.backends[0].capped_waits > 0


@pytest.mark.usefixtures("api_key")
def test_http_faults_through_the_cli_exit_0_without_a_traceback(tmp_path, disagree_cmd):
    faults = [fault for fault, _ in FAULTS.values()]

    def script(n: int, body: dict) -> Reply:
        number = doc_number(body)
        return faults[number % len(faults)] if number % 2 else Reply(content=GOOD)

    with FaultServer(script) as server:
        config = write_config(tmp_path, server.base_url, max_retries=1, retry_after_max=0.05)
        corpus = write_corpus(tmp_path, 40)
        out = tmp_path / "out.jsonl"
        result = run_cli(disagree_cmd, "predict", config, corpus, out)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and not error_lines(result.stderr)
    tasks = read_lines(out)
    assert len(tasks) == 40 and all(t["spans"] or failed([t]) for t in tasks)
    assert "Retry-After waits capped" in result.stdout  # the summary tables: stdout


# --- item 7: the API key never reaches a terminal, a file or a cache --------------------------


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def leak_probes(secret: str = CANARY) -> set[str]:
    """The key, every piece of it of 8 characters, and the Base64 forms a server echoes."""
    pieces = {secret[i : i + 8] for i in range(len(secret) - 7)}
    wrapped = [secret, f"Bearer {secret}", f"user:{secret}"]
    encoded = {b64(text) for text in wrapped}
    encoded |= {b64(text).replace("+", "-").replace("/", "_") for text in wrapped}
    return pieces | encoded


def leaks_in(*texts: str | bytes) -> set[str]:
    blob = b"\n".join(t.encode() if isinstance(t, str) else t for t in texts)
    return {probe for probe in leak_probes() if probe.encode() in blob}


def files_under(folder: Path, *, skip: tuple[Path, ...] = ()) -> list[bytes]:
    """Every file the run wrote: outputs, .partial, the cache (and SQLite's -wal), pipelines."""
    return [p.read_bytes() for p in folder.rglob("*") if p.is_file() and p not in skip]


def echo_script(holder: dict, replies: list) -> object:
    """Answer document i with replies[i % len(replies)](authorization header as received)."""

    def script(n: int, body: dict) -> Reply:
        headers = holder["server"].headers_seen[n - 1]
        received = headers.get("Authorization") or headers.get("X-Api-Key") or ""
        return replies[doc_number(body) % len(replies)](received)

    return script


def error_body(message: str) -> bytes:
    return json.dumps({"error": {"message": message}}).encode()


ECHOES = [
    lambda auth: Reply(content=GOOD),  # the first request is answered
    lambda auth: Reply(status=400, body=error_body(f"Invalid key {CANARY} for this endpoint")),
    lambda auth: Reply(status=400, body=error_body("x" * 180 + CANARY)),  # cut by the excerpt
    lambda auth: Reply(status=400, body=error_body(f"token {b64(auth)} refused")),
    lambda auth: Reply(status=422, body=f"<pre>{auth}</pre>".encode()),
    lambda auth: Reply(content=f"Your key is {CANARY}"),
    lambda auth: Reply(content=f"ORGANISATION: {auth}\nPERSON:\nDATE:"),
    lambda auth: Reply(content=f"Here: {b64(auth)}"),
    lambda auth: Reply(status=500, body=error_body(CANARY)),
]


def test_a_server_echoing_the_key_in_answers_and_errors_leaks_nothing(
    tmp_path, monkeypatch, disagree_cmd
):
    monkeypatch.setenv(KEY_ENV, CANARY)
    holder: dict = {}
    with FaultServer(echo_script(holder, ECHOES)) as server:
        holder["server"] = server
        config = write_config(tmp_path, server.base_url, max_retries=1, max_concurrency=2)
        corpus = write_corpus(tmp_path, 36)
        out = tmp_path / "out.jsonl"
        result = run_cli(disagree_cmd, "predict", config, corpus, out, "--save-io")
    assert result.returncode == 0, result.stderr
    assert server.headers_seen[0]["Authorization"] == f"Bearer {CANARY}"  # the key did travel
    tasks = read_lines(out)
    assert len(tasks) == 36 and len(failed(tasks)) >= 24
    assert "***" in json.dumps(tasks)  # echoes were there, and redacted
    assert not leaks_in(result.stdout, result.stderr, *files_under(tmp_path))


SETUP_ECHOES = {
    "401-echo": lambda auth: Reply(
        status=401, body=error_body(f"Incorrect API key provided: {CANARY}")
    ),
    "401-cut-by-the-excerpt": lambda auth: Reply(status=401, body=error_body("x" * 180 + CANARY)),
    "401-base64": lambda auth: Reply(status=401, body=error_body(f"bad credentials {b64(auth)}")),
    "401-header-in-text": lambda auth: Reply(status=401, body=f"denied: {auth}".encode()),
    "404-echo": lambda auth: Reply(status=404, body=error_body(f"no such thing for {CANARY}")),
}


# Each echo with the key from api_key_env; the two plain ones with the key in `headers` and in
# the base_url's user:key@ too.
KEY_PLACES = [(echo, "api_key_env") for echo in SETUP_ECHOES] + [
    (echo, how) for how in ("headers", "base_url") for echo in ("401-echo", "401-header-in-text")
]


@pytest.mark.parametrize("echo, how", KEY_PLACES, ids=[f"{e}-{h}" for e, h in KEY_PLACES])
def test_a_rejected_key_is_one_line_that_leaks_nothing(
    tmp_path, monkeypatch, disagree_cmd, echo, how
):
    monkeypatch.setenv(KEY_ENV, CANARY)
    holder: dict = {}
    with FaultServer(echo_script(holder, [SETUP_ECHOES[echo]])) as server:
        holder["server"] = server
        settings: dict[str, object] = {}
        if how == "headers":  # the documented `headers` option, e.g. for Azure's api-key
            settings = {"api_key_env": None, "headers": {"X-Api-Key": CANARY}}
        if how == "base_url":  # user:key@ in the URL (requests sends it as Basic auth)
            url = server.base_url.replace("http://", f"http://user:{CANARY}@")
            settings = {"api_key_env": None, "base_url": url}
        config = write_config(tmp_path, **{"base_url": server.base_url, **settings})
        corpus = write_corpus(tmp_path, 3)
        out = tmp_path / "out.jsonl"
        result = run_cli(disagree_cmd, "predict", config, corpus, out)
    assert server.count == 1  # the key did travel, and was echoed
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = error_lines(result.stderr)
    assert "HTTP 40" in line
    assert not leaks_in(result.stdout, result.stderr, *files_under(tmp_path, skip=(config,)))


@pytest.mark.parametrize(
    "setting, value, expected",
    [
        ("api_key_env", CANARY, "api_key_env must name the environment variable"),
        ("key", CANARY + "\nX-Evil: 1", "holds a line break"),
        ("key", CANARY[:12] + "\u2019" + CANARY[12:], "beyond Latin-1"),
        ("key", CANARY[:12] + "\t" + CANARY[12:], "a control character"),
    ],
    ids=["key-as-api_key_env", "key-with-newline", "key-with-curly-quote", "key-with-tab"],
)
def test_a_key_in_the_wrong_place_or_shape_is_one_line_that_leaks_nothing(
    tmp_path, monkeypatch, disagree_cmd, setting, value, expected
):
    monkeypatch.setenv(KEY_ENV, value if setting == "key" else CANARY)
    with FaultServer(lambda n, body: Reply(content=GOOD)) as server:
        settings = {"api_key_env": value} if setting == "api_key_env" else {}
        config = write_config(tmp_path, server.base_url, **settings)
        corpus = write_corpus(tmp_path, 3)
        result = run_cli(disagree_cmd, "predict", config, corpus, tmp_path / "out.jsonl")
    assert server.count == 0
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = error_lines(result.stderr)
    assert expected in line
    assert not leaks_in(result.stdout, result.stderr, *files_under(tmp_path, skip=(config,)))


def test_a_trailing_line_break_in_the_key_is_not_part_of_it(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, CANARY + "\r\n")
    with FaultServer(lambda n, body: Reply(content=GOOD)) as server:
        config = write_config(tmp_path, server.base_url)
        predict_file(config, write_corpus(tmp_path, 2), tmp_path / "out.jsonl")
    assert server.headers_seen[0]["Authorization"] == f"Bearer {CANARY}"


@pytest.mark.parametrize(
    "settings, where",
    [
        ({"api_key_env": None, "headers": {"X-Api-Key": CANARY}}, "headers.X-Api-Key"),
        (
            {"api_key_env": None, "headers": {"Authorization": f"Bearer {CANARY}"}},
            "headers.Authorization",
        ),
        ({"base_url": f"http://user:{CANARY}@127.0.0.1:9/v1"}, "base_url"),
        ({"headers": {"X-Title": "triage"}}, None),  # no secret in the config: saved
    ],
    ids=["x-api-key-header", "authorization-header", "url-credentials", "key-from-env"],
)
def test_assemble_never_saves_a_secret(tmp_path, monkeypatch, disagree_cmd, settings, where):
    monkeypatch.setenv(KEY_ENV, CANARY)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    config = write_config(inputs, **{"base_url": "http://127.0.0.1:9/v1", **settings})
    outputs = tmp_path / "outputs"
    pipeline = outputs / "pipeline"
    result = run_cli(disagree_cmd, "assemble", config, pipeline)
    assert "Traceback" not in result.stderr
    if where is None:
        assert result.returncode == 0, result.stderr
        assert (pipeline / "config.cfg").is_file()
    else:
        assert result.returncode == 1, result.stderr
        (line,) = error_lines(result.stderr)
        assert f"components.llm.model.{where} holds a secret" in line
        assert "api_key_env" in line
        assert not pipeline.exists()
    assert not leaks_in(result.stdout, result.stderr, *files_under(outputs))


# --- item 10: one line, exit 1, no traceback --------------------------------------------------

runner = CliRunner()


def invoke(*args: object) -> object:
    result = runner.invoke(app, [str(arg) for arg in args])
    # Only typer.Exit (SystemExit) may end a command; anything else would be a traceback.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def assert_one_error_line(result: object, *expected: str) -> None:
    assert result.exit_code == 1, result.output
    (line,) = error_lines(result.stderr)
    for text in expected:
        assert text in line, line


def llm_config(tmp_path: Path, **model: object) -> Path:
    return write_config(tmp_path, **{"base_url": "http://127.0.0.1:9/v1", **model})


def tree(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_assemble_onto_a_file_is_one_line(tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    result = invoke("assemble", llm_config(tmp_path), target)
    assert_one_error_line(result, f"{target}: is a file")
    assert target.read_text() == "mine"


def test_assemble_into_a_saved_pipeline_needs_overwrite_and_leaves_it_untouched(tmp_path):
    pipeline = tmp_path / "pipeline"
    assert invoke("assemble", llm_config(tmp_path), pipeline).exit_code == 0
    before = tree(pipeline)
    result = invoke("assemble", llm_config(tmp_path, model="other"), pipeline)
    assert_one_error_line(result, "already exists", "--overwrite")
    assert tree(pipeline) == before
    result = invoke("assemble", llm_config(tmp_path, model="other"), pipeline, "--overwrite")
    assert result.exit_code == 0, result.stderr
    assert 'model = "other"' in (pipeline / "config.cfg").read_text()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".pipeline")] == []


def test_assemble_overwrite_does_not_delete_a_folder_that_is_not_a_pipeline(tmp_path):
    folder = tmp_path / "thesis"
    folder.mkdir()
    (folder / "chapter1.tex").write_text("precious")
    result = invoke("assemble", llm_config(tmp_path), folder, "--overwrite")
    assert_one_error_line(result, "not a saved pipeline")
    assert (folder / "chapter1.tex").read_text() == "precious"


@pytest.mark.parametrize(
    "override, expected",
    [
        (["--x"], "config override '--x': name a setting inside a section"),
        (["stray"], "config override 'stray': expected --section.key value"),
        (["--components.llm.model.model", "${env:HOME}"], "Bad value substitution"),
        (["--nlp.lang", "zz"], "Can't import language zz"),
        (["--components.llm.model.timeout", "-1"], "timeout must be above 0"),
        (["--components.llm.model.timeout", "abc"], "timeout"),
    ],
    ids=[
        "top-level-name",
        "stray-value",
        "env-interpolation",
        "lang-unknown",
        "timeout-negative",
        "timeout-text",
    ],
)
def test_bad_overrides_are_one_line(tmp_path, override, expected):
    pipeline = tmp_path / "pipeline"
    result = invoke("assemble", llm_config(tmp_path), pipeline, *override)
    assert_one_error_line(result, expected)
    assert not pipeline.exists()


@pytest.mark.usefixtures("api_key")
@pytest.mark.parametrize(
    "setting, expected",
    [
        ({"timeout": -1}, "timeout must be above 0"),
        ({"max_retries": -2}, "max_retries must be >= 0"),
        ({"base_url": "not a url"}, "base_url must be an http:// or https:// URL"),
        ({"base_url": "file:///etc/passwd"}, "base_url must be an http:// or https:// URL"),
        ({"base_url": "http://127.0.0.1:port/v1"}, "is not a valid URL"),
    ],
    ids=["timeout", "max_retries", "not-a-url", "file-url", "bad-port"],
)
def test_settings_that_crashed_predict_fail_when_the_pipeline_is_built(tmp_path, setting, expected):
    config = llm_config(tmp_path, **setting)
    assert_one_error_line(invoke("assemble", config, tmp_path / "pipeline"), expected)
    corpus = write_corpus(tmp_path, 2)
    assert_one_error_line(invoke("predict", config, corpus, tmp_path / "out.jsonl"), expected)


@pytest.fixture
def restore_key_env(monkeypatch):
    """A .env loaded in-process sets KEY_ENV: put the environment back afterwards."""
    monkeypatch.setenv(KEY_ENV, "placeholder")
    monkeypatch.delenv(KEY_ENV)


def test_an_env_file_that_is_not_utf8_is_one_line(tmp_path, monkeypatch, restore_key_env):
    env = tmp_path / "secrets.env"
    env.write_bytes(f"{KEY_ENV}=".encode() + b"sk-\xff\xfe-latin1-key\n")
    config = llm_config(tmp_path)
    result = invoke("assemble", config, tmp_path / "pipeline", "--env-file", env)
    assert_one_error_line(result, f"{env}: not UTF-8 text")
    monkeypatch.chdir(tmp_path)
    env.rename(tmp_path / ".env")
    result = invoke("predict", config, write_corpus(tmp_path, 2), "out.jsonl")
    assert_one_error_line(result, ".env: not UTF-8 text")


def test_a_key_beyond_latin1_is_one_line_and_no_request(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-\u043a\u043b\u044e\u0447-0123456789")  # Cyrillic letters
    with FaultServer(lambda n, body: Reply(content=GOOD)) as server:
        config = write_config(tmp_path, server.base_url)
        result = invoke("predict", config, write_corpus(tmp_path, 2), tmp_path / "out.jsonl")
    assert_one_error_line(result, f"the API key in {KEY_ENV} holds a character beyond Latin-1")
    assert server.count == 0
    assert "\u043a" not in result.stderr
