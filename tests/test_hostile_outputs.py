"""Outputs onto inputs, links and special files, kept as a regression suite (issue 28): every
case here once deleted an input, wrote into one, followed a link or replaced a device. Each
is a row of a table: the files it sets up, the command, and the cause its one error line must
name; every case ends with exit 1 and every file as it was, nothing written, nothing deleted.

Inputs that can be read only once, texts too long for spaCy, symlink loops and long model
names are in test_hostile_inputs.py.
"""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import SM, A, B, shared_file, write_predictions
from disagree_triage import diff_files
from test_argilla_gold import annotate, spans
from test_gold_formats import GOLD, OTHER, PRED

MARKER = ".disagree.json"


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def snapshot(root: Path) -> dict[str, object]:
    """Every entry under `root`: a file's bytes, a link's target, a folder, a special file's
    kind; so that 'nothing changed' can be asserted whole."""
    seen: dict[str, object] = {}
    for folder, folders, files in os.walk(root):
        for name in [*folders, *files]:
            path = Path(folder, name)
            mode = path.lstat().st_mode
            key = str(path.relative_to(root))
            if stat.S_ISLNK(mode):
                seen[key] = ("link", os.readlink(path))
            elif stat.S_ISREG(mode):
                seen[key] = path.read_bytes()
            else:
                seen[key] = stat.S_IFMT(mode)
    return seen


# What a case sets up before its command runs: each a function of the test's folder.
Setup = Callable[[Path], object]


def inputs(folder: str = "in") -> Setup:
    """The two prediction files of conftest's `pair`, as FOLDER/a.jsonl and FOLDER/b.jsonl."""

    def make(tmp: Path) -> None:
        (tmp / folder).mkdir(parents=True, exist_ok=True)
        write_predictions(tmp / folder / "a.jsonl", "sm", A)
        write_predictions(tmp / folder / "b.jsonl", "md", B)

    return make


def text(name: str, content: str = "keep") -> Setup:
    def make(tmp: Path) -> None:
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / name).write_text(content)

    return make


def symlink(name: str, target: str) -> Setup:
    return lambda tmp: (tmp / name).symlink_to(target)


def device(name: str) -> Setup:
    """A device node where root may make one (a copy of /dev/null), else a FIFO: neither may
    ever become a regular file."""

    def make(tmp: Path) -> None:
        try:
            os.mknod(tmp / name, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        except PermissionError:
            os.mkfifo(tmp / name)

    return make


def gold(tmp: Path) -> None:
    """An annotated Argilla dataset folder `ag` (the queue diff wrote, with responses as the
    SDK's to_disk writes them), from the prediction files p.jsonl and o.jsonl."""
    models = [
        write_predictions(tmp / "p.jsonl", "model", PRED),
        write_predictions(tmp / "o.jsonl", "other", OTHER),
    ]
    diff_files(models, output=tmp / "ag", output_format="argilla")
    responses = {t: [{"value": spans(t), "user_id": "u", "submitted": True}] for t in GOLD}
    annotate(tmp / "ag", responses)


PAIR = "{t}/in/a.jsonl {t}/in/b.jsonl"
DEVICE_CASES = [  # (output, its command, the device it names); each with --overwrite
    ("diff --output", f"diff {PAIR} -o {{t}}/nul", "nul"),
    ("diff --agreements", f"diff {PAIR} -o {{t}}/q.jsonl --agreements {{t}}/nul", "nul"),
    ("diff --agreements (.spacy)", f"diff {PAIR} -o {{t}}/q.jsonl --agreements {{t}}/n.spacy",
     "n.spacy"),
    ("diff --labelstudio-config", f"diff {PAIR} --format labelstudio -o {{t}}/q.json "
     "--labelstudio-config {t}/nul.xml", "nul.xml"),
    ("report --html", f"report {PAIR} --html {{t}}/nul", "nul"),
    ("predict OUTPUT", f"predict {SM} {{t}}/in/a.jsonl {{t}}/nul", "nul"),
    ("evaluate --write-examples", f"evaluate {PAIR} --write-examples {{t}}/nul.yml", "nul.yml"),
    ("convert OUTPUT", "convert {t}/in/a.jsonl {t}/nul.spacy", "nul.spacy"),
]  # fmt: skip
# (case, what exists before, the command ({t}: the test's folder), what the error line says)
CASES: list[tuple[str, list[Setup], str, str]] = [
    # 1. a folder output, or its .partial, that holds the inputs
    (
        "argilla: its .partial holds the inputs",
        [inputs("q.partial")],
        "diff {t}/q.partial/a.jsonl {t}/q.partial/b.jsonl --format argilla -o {t}/q",
        "would replace the folder that holds this input (it is written as q.partial first)",
    ),
    (
        "argilla: the output folder holds the inputs, --overwrite",
        [inputs("q")],
        "diff {t}/q/a.jsonl {t}/q/b.jsonl --format argilla -o {t}/q --overwrite",
        "would replace the folder that holds this input",
    ),
    (
        "--split-by-model: its .partial holds the inputs",
        [inputs("s/sm.partial")],
        "diff {t}/s/sm.partial/a.jsonl {t}/s/sm.partial/b.jsonl --format argilla "
        "--split-by-model {t}/s",
        "--split-by-model (sm) {t}/s/sm would replace the folder that holds this input",
    ),
    (
        "--split-by-model: the model's folder holds the inputs, --overwrite",
        [inputs("s/sm")],
        "diff {t}/s/sm/a.jsonl {t}/s/sm/b.jsonl --format argilla --split-by-model {t}/s "
        "--overwrite",
        "would replace the folder that holds this input",
    ),
    (
        "--split-by-model: a JSONL queue's .partial is a folder of inputs",
        [inputs("s/sm.jsonl.partial")],
        "diff {t}/s/sm.jsonl.partial/a.jsonl {t}/s/sm.jsonl.partial/b.jsonl --split-by-model {t}/s",
        "would replace the folder that holds this input",
    ),
    (
        "argilla: someone else's q.partial folder, --overwrite",
        [inputs(), text("q.partial/notes.txt")],
        f"diff {PAIR} --format argilla -o {{t}}/q --overwrite",
        "q.partial: exists, and is not what a killed run of disagree leaves; it is not deleted",
    ),
    (
        "argilla: an annotated dataset folder, --overwrite",
        [inputs(), gold],
        f"diff {PAIR} --format argilla -o {{t}}/ag --overwrite",
        "no Argilla dataset folder that disagree wrote",
    ),
    (
        "argilla: a dataset folder another tool wrote, --overwrite",
        [inputs(), text("q/.argilla/settings.json", "{}"), text("q/records.json", "[]")],
        f"diff {PAIR} --format argilla -o {{t}}/q --overwrite",
        f"(no {MARKER}, or changed since: annotated?)",
    ),
    # 2. every file inside an input folder is an input
    (
        "evaluate --write-examples into the gold folder",
        [gold],
        "evaluate {t}/ag {t}/p.jsonl {t}/o.jsonl --write-examples {t}/ag/records.json --overwrite",
        "{t}/ag: --write-examples {t}/ag/records.json would write inside this input folder",
    ),
    (
        "diff --output into the --calibrate folder",
        [gold],
        "diff {t}/p.jsonl {t}/o.jsonl --calibrate {t}/ag -o {t}/ag/records.json --overwrite",
        "{t}/ag: --output {t}/ag/records.json would write inside this input folder",
    ),
    (
        "report --html over its --calibrate file",
        [inputs(), inputs("gold")],
        f"report {PAIR} --calibrate {{t}}/gold/a.jsonl --html {{t}}/gold/a.jsonl --overwrite",
        "would write over this input file",
    ),
    # 3. a link named like the .partial is never followed
    (
        "diff: OUTPUT.partial is a link",
        [inputs(), text("important.txt"), symlink("q.jsonl.partial", "important.txt")],
        f"diff {PAIR} -o {{t}}/q.jsonl",
        "q.jsonl.partial: a symbolic link where disagree writes its temporary file",
    ),
    (
        "diff: the --agreements .partial is a link",
        [inputs(), text("important.txt"), symlink("ag.jsonl.partial", "important.txt")],
        f"diff {PAIR} -o {{t}}/q.jsonl --agreements {{t}}/ag.jsonl",
        "ag.jsonl.partial: a symbolic link where disagree writes its temporary file",
    ),
    (
        "diff: OUTPUT.partial is a link that leads nowhere",
        [inputs(), symlink("q.jsonl.partial", "created-through-the-link.txt")],
        f"diff {PAIR} -o {{t}}/q.jsonl",
        "q.jsonl.partial: a symbolic link where disagree writes its temporary file",
    ),
    *[
        (
            f"predict: OUTPUT.partial is a link, {how}",
            [inputs(), text("important.txt"), symlink("o.jsonl.partial", "important.txt")],
            f"predict {SM} {{t}}/in/a.jsonl {{t}}/o.jsonl {how}",
            "o.jsonl.partial: a symbolic link where disagree writes its temporary file",
        )
        for how in ("--overwrite", "--resume")
    ],
    # 4. --overwrite replaces files: never a device or a FIFO
    *[
        (
            f"{output} is a device, --overwrite",
            [inputs(), device(name)],
            f"{command} --overwrite",
            f"{{t}}/{name}: exists and is a ",
        )
        for output, command, name in DEVICE_CASES
    ],
]


@pytest.mark.parametrize("case", [name for name, *_ in CASES])
def test_an_output_never_touches_what_it_must_not(case, tmp_path, cli):
    _, setups, command, cause = next(row for row in CASES if row[0] == case)
    for setup in setups:
        setup(tmp_path)
    before = snapshot(tmp_path)
    result = cli(*shlex.split(command.format(t=tmp_path)))
    assert result.returncode == 1, (case, result.stderr)
    line = one_error_line(result.stderr)
    assert line.startswith("error: ") and cause.format(t=tmp_path) in line, line
    assert result.stdout == ""
    assert snapshot(tmp_path) == before  # nothing written, nothing deleted


def test_what_a_killed_run_left_is_replaced_and_an_own_folder_overwritten(tmp_path, cli):
    """The other side of the rule: a `.partial` folder that a killed diff left (its marker
    inside), or an empty one, is debris; a folder diff wrote, unchanged, is replaced with
    --overwrite, and only then."""
    inputs()(tmp_path)
    a, b = tmp_path / "in" / "a.jsonl", tmp_path / "in" / "b.jsonl"
    queue, building = tmp_path / "q", tmp_path / "q.partial"
    (building / ".argilla").mkdir(parents=True)
    (building / MARKER).write_text(json.dumps({"written_by": "disagree"}))
    (building / "records.json.partial").write_text('[\n{"metadata": {"ra')
    assert cli("diff", a, b, "--format", "argilla", "-o", queue).returncode == 0
    assert not building.exists()
    records = json.loads((queue / "records.json").read_text())
    assert len(records) == 4
    marker = json.loads((queue / MARKER).read_text())
    assert marker["written_by"] == "disagree" and len(marker["records_sha256"]) == 64
    building.mkdir()  # empty: nothing to lose
    result = cli("diff", a, b, "--format", "argilla", "-o", queue, "--top", "1", "--overwrite")
    assert result.returncode == 0, result.stderr
    assert len(json.loads((queue / "records.json").read_text())) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "q"]


def test_a_partial_file_a_killed_diff_left_is_still_replaced(tmp_path, cli):
    """A regular OUTPUT.partial is debris of a killed diff (which cannot be resumed): replaced
    by a file this run creates, not written through."""
    inputs()(tmp_path)
    a, b = tmp_path / "in" / "a.jsonl", tmp_path / "in" / "b.jsonl"
    out = tmp_path / "q.jsonl"
    debris = tmp_path / "q.jsonl.partial"
    debris.write_text('{"text": "half')
    other = tmp_path / "hard-link.txt"
    os.link(debris, other)  # a second name of the same file: it must keep its bytes
    assert cli("diff", a, b, "-o", out).returncode == 0
    assert not debris.exists() and len(out.read_text().splitlines()) == 4
    assert other.read_text() == '{"text": "half'


# --- every output, the same bytes run after run ------------------------------------------

# Each command runs in a folder of its own per hash seed (the same relative paths), its
# files written under o/; what it prints is compared too. a/b: conftest's pair (labels with
# equal counts); gold/x/y: 300 real WNUT-17 texts and two models made from them.
SEEDED = {
    "report --html": "report a.jsonl b.jsonl --html o/r.html",
    "diff, --agreements, --split-by-model": "diff a.jsonl b.jsonl -o o/q.jsonl "
    "--agreements o/ag.jsonl --split-by-model o/s",
    "diff --agreements .spacy --calibrate --target": "diff x.jsonl y.jsonl -o o/q.jsonl "
    "--agreements o/ag.spacy --calibrate gold.jsonl --target x",
    "diff --format labelstudio": "diff a.jsonl b.jsonl --format labelstudio -o o/q.json",
    "diff --format argilla": "diff x.jsonl y.jsonl --format argilla -o o/ds",
    "diff --format doccano": "diff a.jsonl b.jsonl --format doccano -o o/q.jsonl",
    "evaluate": "evaluate a.jsonl a.jsonl b.jsonl --names x,y",
    "evaluate --json --write-examples": "evaluate gold.jsonl x.jsonl y.jsonl --json "
    "--write-examples o/ex.yml",
    "convert": "convert gold.jsonl o/gold.spacy",
}


def seeded_inputs(folder: Path) -> None:
    write_predictions(folder / "a.jsonl", "a", A)
    write_predictions(folder / "b.jsonl", "b", B)
    labels = ["PERSON", "LOCATION", "GROUP", "CORPORATION", "PRODUCT", "CREATIVE_WORK"]
    rows = shared_file("gold/wnut17_dev.jsonl").read_text(encoding="utf-8").splitlines()[:300]
    gold = [json.loads(row) for row in rows]
    for name, change in (
        ("gold", lambda i, j, s: s),
        ("x", lambda i, j, s: None if (i + j) % 3 == 0 else s),  # misses every third
        ("y", lambda i, j, s: {**s, "label": labels[(labels.index(s["label"]) + 1) % 6]}
         if (i * 7 + j) % 4 == 0 else s),  # another label for every fourth
    ):  # fmt: skip
        with (folder / f"{name}.jsonl").open("w", encoding="utf-8") as out:
            for i, record in enumerate(gold):
                spans = [change(i, j, s) for j, s in enumerate(record.get("spans") or [])]
                kept = [{k: s[k] for k in ("start", "end", "label")} for s in spans if s]
                task = {"text": record["text"], "spans": kept, "answer": "accept"}
                out.write(json.dumps({**task, "_annotator_id": name}) + "\n")


@pytest.mark.parametrize("command", list(SEEDED))
def test_every_output_is_the_same_bytes_whatever_the_hash_seed(command, tmp_path, disagree_cmd):
    """Sets and dicts of strings iterate in an order that PYTHONHASHSEED changes: labels with
    equal counts once came out in another order from run to run (report --html)."""
    outputs = []
    for seed in ("1", "2", "3"):
        folder = tmp_path / seed
        (folder / "o").mkdir(parents=True)
        seeded_inputs(folder)
        env = {**os.environ, "PYTHONHASHSEED": seed, "COLUMNS": "200"}
        run = subprocess.run(
            [*disagree_cmd, *shlex.split(SEEDED[command])],
            cwd=folder, env=env, capture_output=True, timeout=300,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr.decode()
        outputs.append((run.stdout, run.stderr, snapshot(folder / "o")))
    assert outputs[0][2] or " o/" not in SEEDED[command], "no output file was written"
    assert outputs[1] == outputs[0] and outputs[2] == outputs[0]
