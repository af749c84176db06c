"""`predict --dask`: real `distributed` clusters of worker processes on 127.0.0.1, the real
en_core_web_md pipeline, real corpora; each run is compared byte for byte with the plain run."""

from __future__ import annotations

import importlib.util
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import (
    EXAMPLES,
    MD,
    NER_MAP,
    assert_valid_ner_manual,
    first_lines,
    needs_llama_server,
    read_lines,
    shared_file,
)
from disagree_triage import DisagreeError, predict_file
from disagree_triage.io.jsonl import read_jsonl

distributed = pytest.importorskip("distributed", reason="pip install -e '.[dask]'")
dask_driver = pytest.importorskip("disagree_triage.predict.dask_driver")
from disagree_triage.predict import dask_worker, partitions  # noqa: E402

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec(MD) is None, reason=f"{MD} not installed: pip install -e '.[models]'"
)

LABELS = {"ORGANISATION", "PERSON", "DATE"}


def _cluster(**scheduler_config: object) -> distributed.LocalCluster:
    """Two worker processes on 127.0.0.1, as `--dask local:2` starts them."""
    import dask

    with dask.config.set({f"distributed.scheduler.{k}": v for k, v in scheduler_config.items()}):
        return dask_driver.local_cluster(2)


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes, reached by address as a user's running cluster is."""
    with _cluster() as running, distributed.Client(running) as client:
        yield running.scheduler_address, client


def corpus(tmp_path: Path, lines: int, name: str = "corpus.jsonl") -> Path:
    source = shared_file("corpora/wikinews_sentences.jsonl")
    path = tmp_path / name
    with source.open("rb") as stream:
        path.write_bytes(b"".join(stream.readline() for _ in range(lines)))
    return path


def plain(tmp_path: Path, source: Path, **options: object) -> Path:
    out = tmp_path / "plain.jsonl"
    predict_file(MD, source, out, ner=NER_MAP, **options)
    return out


def test_the_same_bytes_as_a_run_without_dask(tmp_path, cluster):
    address, client = cluster
    source = corpus(tmp_path, 300)
    expected = plain(tmp_path, source, annotator="md")
    loads_before = client.run(lambda: dask_worker.loads)
    progress: list[int] = []
    started: list[int] = []
    out = tmp_path / "out.jsonl"
    summary = dask_driver.predict_file_dask(
        MD,
        source,
        out,
        dask=address,
        partitions=5,
        ner=NER_MAP,
        annotator="md",
        batch_size=16,
        on_start=lambda s: started.append(s.total),
        on_progress=progress.append,
    )
    assert out.read_bytes() == expected.read_bytes()
    tasks = read_lines(out)
    for task in tasks:
        assert_valid_ner_manual(task, LABELS)
    assert summary.total == summary.written == 300 and started == [300]
    assert sum(progress) == 300 and len(progress) > 1  # counted as the workers went
    assert summary.entities == Counter(span["label"] for t in tasks for span in t["spans"])
    assert summary.components == ["ner"]
    assert not partitions.parts_dir(out).exists() and not Path(f"{out}.partial").exists()
    # The pipeline is loaded once per worker process, not once per partition (5 > 2 workers).
    loads_after = client.run(lambda: dask_worker.loads)
    assert all(loads_after[w] - loads_before.get(w, 0) <= 1 for w in loads_after)


def _broken(tmp_path: Path, bad: dict[int, str]) -> Path:
    """The corpus with some lines (1-based) replaced."""
    source = corpus(tmp_path, 300, "good.jsonl")
    lines = source.read_text(encoding="utf-8").splitlines(True)
    for number, text in bad.items():
        lines[number - 1] = text + "\n"
    path = tmp_path / "broken.jsonl"
    path.write_text("".join(lines), encoding="utf-8")
    return path


def test_a_bad_line_in_a_late_partition_is_the_usual_error_and_writes_nothing(tmp_path, cluster):
    address, _ = cluster
    source = _broken(tmp_path, {281: '{"text": 5}', 297: "{not json"})
    with pytest.raises(DisagreeError) as without:
        plain(tmp_path, source)
    out = tmp_path / "out.jsonl"
    with pytest.raises(DisagreeError) as with_dask:
        dask_driver.predict_file_dask(MD, source, out, dask=address, partitions=6, ner=NER_MAP)
    assert str(with_dask.value) == str(without.value)
    assert str(with_dask.value).startswith(f"{source}, line 281, field 'text': expected a string")
    assert sorted(os.listdir(tmp_path)) == ["broken.jsonl", "good.jsonl"]  # nothing written


def test_skip_invalid_names_the_lines_of_the_whole_file(tmp_path, cluster):
    address, _ = cluster
    source = _broken(tmp_path, {3: '{"text": ""}', 150: "[1]", 299: '{"txt": "x"}'})
    expected = plain(tmp_path, source, skip_invalid=True)
    out = tmp_path / "out.jsonl"
    summary = dask_driver.predict_file_dask(
        MD, source, out, dask=address, partitions=4, ner=NER_MAP, skip_invalid=True
    )
    assert out.read_bytes() == expected.read_bytes()
    assert summary.invalid.lines == [3, 150, 299] and summary.total == 297
    assert (
        str(summary.invalid.errors[1])
        == f"{source}, line 150: expected a JSON object, got an array"
    )


def _kill_a_worker_part_way(client, parts: Path, run) -> list[BaseException]:
    """Start `run` (a predict on `client`'s cluster) in a thread, SIGKILL a worker process as
    soon as a part is half-written, and return what `run` raised."""
    pid = next(iter(client.run(os.getpid).values()))
    failed: list[BaseException] = []

    def target() -> None:
        try:
            run()
        except BaseException as err:  # noqa: BLE001 - handed to the test's thread
            failed.append(err)

    def half_written() -> bool:
        try:
            return any(p.stat().st_size for p in parts.glob("part-*.jsonl.partial"))
        except FileNotFoundError:  # renamed as we looked: complete
            return False

    driver = threading.Thread(target=target)
    driver.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not half_written():
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    driver.join(300)
    assert not driver.is_alive()
    return failed


def test_a_worker_killed_part_way_is_replaced_and_its_part_continued(tmp_path, cluster):
    """Dask runs the dead worker's partition again elsewhere: the new attempt continues the
    half-written part, and the output is still the plain run's, without --resume."""
    address, client = cluster
    source = corpus(tmp_path, 1500)
    expected = plain(tmp_path, source)
    out = tmp_path / "out.jsonl"
    failed = _kill_a_worker_part_way(
        client,
        partitions.parts_dir(out),
        lambda: dask_driver.predict_file_dask(
            MD, source, out, dask=address, partitions=6, ner=NER_MAP, batch_size=8
        ),
    )
    assert failed == []
    assert out.read_bytes() == expected.read_bytes()


def test_a_worker_killed_part_way_then_resume_gives_the_same_bytes(tmp_path):
    source = corpus(tmp_path, 1500)
    expected = plain(tmp_path, source)
    out = tmp_path / "out.jsonl"
    parts = partitions.parts_dir(out)
    # No retry: the kill stops the run, as a dead machine would once Dask's retries are spent.
    with _cluster(**{"allowed-failures": 0}) as running, distributed.Client(running) as client:
        address = running.scheduler_address
        failed = _kill_a_worker_part_way(
            client,
            parts,
            lambda: dask_driver.predict_file_dask(
                MD, source, out, dask=address, partitions=6, ner=NER_MAP, batch_size=8
            ),
        )
        assert len(failed) == 1 and isinstance(failed[0], DisagreeError), failed
        assert "died" in str(failed[0]) and "--resume" in str(failed[0])
        assert not out.exists() and parts.is_dir()
        # Some part is complete or half-written: --resume keeps it and redoes the rest.
        summary = dask_driver.predict_file_dask(
            MD, source, out, dask=address, partitions=3, ner=NER_MAP, resume=True
        )
    assert out.read_bytes() == expected.read_bytes()
    assert summary.already_done > 0 and summary.written + summary.already_done == 1500
    assert not parts.exists()


def test_refusals_before_any_work(tmp_path, cluster):
    address, _ = cluster
    source = corpus(tmp_path, 5)
    out = tmp_path / "out.jsonl"
    partitions.parts_dir(out).mkdir()
    with pytest.raises(DisagreeError, match="interrupted Dask run left these parts"):
        dask_driver.predict_file_dask(MD, source, out, dask=address)
    with pytest.raises(DisagreeError, match="expected local, local:N or a scheduler"):
        dask_driver.predict_file_dask(MD, source, tmp_path / "o2.jsonl", dask="localhost")
    with pytest.raises(DisagreeError, match="local:N with N a number"):
        dask_driver.predict_file_dask(MD, source, tmp_path / "o2.jsonl", dask="local:two")
    with pytest.raises(DisagreeError, match="not stdin"):
        dask_driver.predict_file_dask(MD, "-", tmp_path / "o2.jsonl", dask=address)
    with pytest.raises(DisagreeError, match="exclude each other"):
        dask_driver.predict_file_dask(MD, source, tmp_path / "o2.jsonl", dask=address, n_process=2)
    (tmp_path / "done.jsonl").write_text("{}\n")
    with pytest.raises(DisagreeError, match="no Dask run left parts"):
        dask_driver.predict_file_dask(
            MD, source, tmp_path / "done.jsonl", dask=address, resume=True
        )


@pytest.mark.parametrize("count", [1, 2, 3, 7, 40])
def test_partitions_cover_the_file_on_line_starts_with_their_line_numbers(tmp_path, count):
    lines = [b'{"text": "a"}\n', b"\n", b'{"text": "' + b"b" * 300 + b'"}\n', b"\r\n"] * 5
    lines.append(b'{"text": "last, no newline"}')
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"".join(lines))
    plan = partitions.plan_partitions(path, count)
    data = path.read_bytes()
    assert 1 <= len(plan) <= count
    assert b"".join(data[p.lines.start : p.lines.end] for p in plan) == data
    for part in plan:
        assert part.lines.start == 0 or data[part.lines.start - 1 : part.lines.start] == b"\n"
        assert part.lines.first_line == data[: part.lines.start].count(b"\n") + 1
    numbered = [r.line for p in plan for r in read_jsonl(path, lines=p.lines)]
    assert numbered == [r.line for r in read_jsonl(path)]


def test_cli_local_cluster(tmp_path, cli):
    """`--dask local:2` starts its own LocalCluster; the CLI's output file and summary."""
    source = corpus(tmp_path, 120)
    expected = plain(tmp_path, source, annotator="md")
    out = tmp_path / "out.jsonl"
    result = cli(
        "predict",
        MD,
        str(source),
        str(out),
        "--ner",
        NER_MAP,
        "--annot-name",
        "md",
        "--dask",
        "local:2",
    )
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == expected.read_bytes()
    assert "docs written" in result.stdout and "120" in result.stdout


@needs_llama_server
def test_an_llm_config_on_workers_shares_the_response_cache(tmp_path, cluster):
    """llama.cpp's real server on 127.0.0.1: the workers ask it (each with its own
    concurrency) and fill one response cache, from which a plain run then answers every text,
    writing the same bytes."""
    from disagree_triage.llm.llamacpp import bundled_model_path
    from llm_servers import LlamaCppServer, write_server_config

    address, _ = cluster
    source = first_lines(EXAMPLES / "news.jsonl", 6, tmp_path / "corpus.jsonl")
    with LlamaCppServer(bundled_model_path()) as server:
        config = write_server_config(tmp_path, server)
        out = tmp_path / "out.jsonl"
        summary = dask_driver.predict_file_dask(
            config, source, out, dask=address, partitions=3, annotator="llm"
        )
    stats = summary.backends[0]
    assert stats.requests == 6 and stats.failures == 0 and stats.completion_tokens > 0
    again = tmp_path / "again.jsonl"
    plain_summary = predict_file(config, source, again, annotator="llm")  # server gone
    assert plain_summary.backends[0].cached == 6 and plain_summary.backends[0].requests == 0
    assert out.read_bytes() == again.read_bytes()
    for task in read_lines(out):
        assert_valid_ner_manual(task, {"PERSON", "ORGANISATION", "DATE"})
