"""The LLM backend against hostile servers, round two (issue 28): a redirect that would carry
the key to another server, a server that trickles its answer past the timeout, an answer too
big to hold, and the setup mistakes around them (.env, a refused batch). Kept as tables: each
row once leaked a key, hung a run or ended in a traceback.

Servers are real HTTP servers on 127.0.0.1 (`llm_servers.FaultServer`), scripted for what a
real LLM server will not do on demand.
"""

from __future__ import annotations

import pytest

from batch_server import BatchServer
from conftest import read_lines
from disagree_triage import predict_file
from disagree_triage.llm import batch
from disagree_triage.llm.openai_compatible import LLMSetupError
from llm_servers import GOOD, KEY_ENV, FaultServer, Reply, write_config, write_corpus
from test_hostile_llm import CANARY, error_lines, files_under, leaks_in, run_cli

REDIRECTS = [301, 302, 303, 307, 308]
# How the key travels: in the header api_key_header names (Azure's api-key), in `headers`, and
# as `Authorization: Bearer` (which requests already stripped on a redirect to another port).
KEY_FORMS: dict[str, dict[str, object]] = {
    "api_key_header": {"api_key_header": "api-key"},
    "headers": {"api_key_env": None, "headers": {"X-Api-Key": CANARY}},
    "authorization": {},
}


def redirect_to(status: int, location: str) -> object:
    return lambda n, body: Reply(status=status, body=b"", headers={"Location": location})


# --- item 5: a redirect never carries the key, or the documents, to another origin ----------


@pytest.mark.parametrize("form", list(KEY_FORMS))
@pytest.mark.parametrize("status", REDIRECTS)
def test_a_redirect_to_another_port_gets_neither_key_nor_documents(
    tmp_path, monkeypatch, status, form
):
    monkeypatch.setenv(KEY_ENV, CANARY)
    with FaultServer(lambda n, body: Reply(content=GOOD)) as other:
        target = f"{other.base_url}/chat/completions"
        with FaultServer(redirect_to(status, target)) as origin:
            config = write_config(tmp_path, origin.base_url, **KEY_FORMS[form])
            out = tmp_path / "out.jsonl"
            with pytest.raises(LLMSetupError) as refused:
                predict_file(config, write_corpus(tmp_path, 3), out, annotator="llm")
    assert origin.count == 1  # the first request, alone, to the configured server
    assert other.count == 0, other.headers_seen  # nothing at all crossed: no key, no text
    message = str(refused.value)
    assert f"HTTP {status}" in message and f"127.0.0.1:{other.port}" in message
    assert "another server" in message and "base_url" in message
    assert not out.exists()
    assert not leaks_in(message, *files_under(tmp_path, skip=(config,)))


def test_a_cross_origin_redirect_through_the_cli_is_one_line(tmp_path, monkeypatch, disagree_cmd):
    monkeypatch.setenv(KEY_ENV, CANARY)
    with FaultServer(lambda n, body: Reply(content=GOOD)) as other:
        # Same host and path, another port, the key in user:key@ as well: still another origin.
        target = other.base_url.replace("http://", f"http://user:{CANARY}@") + "/chat/completions"
        with FaultServer(redirect_to(307, target)) as origin:
            config = write_config(tmp_path, origin.base_url, **KEY_FORMS["headers"])
            out = tmp_path / "out.jsonl"
            result = run_cli(disagree_cmd, "predict", config, write_corpus(tmp_path, 3), out)
    assert other.count == 0
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = error_lines(result.stderr)
    assert "redirects (HTTP 307) to another server" in line
    assert not out.exists()
    assert not leaks_in(result.stdout, result.stderr, *files_under(tmp_path, skip=(config,)))


# On the same origin, a 307 or 308 is followed: it keeps the method and the body, and the key
# stays on the server it was configured for. A 301, 302 or 303 would turn the POST into a GET,
# which no chat-completions endpoint answers: refused with the address to put in base_url.
@pytest.mark.parametrize("status", REDIRECTS)
def test_a_same_origin_redirect_is_followed_only_when_it_keeps_the_request(
    tmp_path, api_key, status
):
    def script(n: int, body: dict) -> Reply:
        if origin.paths[n - 1] == "POST /v1/chat/completions":
            return Reply(status=status, body=b"", headers={"Location": "/v2/chat/completions"})
        return Reply(content=GOOD)

    with FaultServer(script) as origin:
        config = write_config(tmp_path, origin.base_url, api_key_header="api-key")
        out = tmp_path / "out.jsonl"
        corpus = write_corpus(tmp_path, 3)
        if status in (307, 308):
            predict_file(config, corpus, out, annotator="llm")
        else:
            with pytest.raises(LLMSetupError, match=f"HTTP {status}.*into a GET.*base_url"):
                predict_file(config, corpus, out, annotator="llm")
    if status in (307, 308):
        tasks = read_lines(out)
        assert len(tasks) == 3 and all(t["spans"] for t in tasks)
        moved = [i for i, path in enumerate(origin.paths) if path.startswith("POST /v2/")]
        assert len(moved) == 3
        assert all(origin.headers_seen[i]["api-key"] == api_key for i in moved)
        assert all(origin.bodies[i]["messages"] for i in moved)  # the body went along
    else:
        assert origin.paths == ["POST /v1/chat/completions"]
        assert not out.exists()


# --- the Batch API: the same redirect rule; a refused submit leaves no file behind ------------


def test_a_batch_submit_redirected_to_another_server_sends_nothing_there(tmp_path, api_key):
    with BatchServer(lambda body: GOOD) as other:
        with FaultServer(redirect_to(307, f"{other.base_url}/files")) as origin:
            config = write_config(tmp_path, origin.base_url, api_key_header="api-key", cache=False)
            out = tmp_path / "out.jsonl"
            with pytest.raises(LLMSetupError, match="redirects \\(HTTP 307\\) to another server"):
                batch.submit(config, write_corpus(tmp_path, 3), out)
    assert other.calls == []
    assert origin.paths == ["POST /v1/files"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.jsonl", "llm.cfg"]


@pytest.mark.parametrize("refusal", ["wrong-key", "cross-origin-redirect"])
def test_a_refused_batch_submit_through_the_cli_leaves_nothing(tmp_path, monkeypatch, cli, refusal):
    monkeypatch.setenv(KEY_ENV, "sk-wrong-0123456789abcdefWRONG")
    with BatchServer(lambda body: GOOD, api_key=CANARY) as server:
        base_url = server.base_url
        with FaultServer(redirect_to(308, f"{server.base_url}/files")) as redirecting:
            if refusal == "cross-origin-redirect":
                base_url = redirecting.base_url
            config = write_config(tmp_path, base_url, cache=False)
            out = tmp_path / "out.jsonl"
            corpus = write_corpus(tmp_path, 3)
            result = cli("predict", config, corpus, out, "--batch", "submit")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and len(error_lines(result.stderr)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.jsonl", "llm.cfg"]
