"""The package's shape, pinned: stages that import one way and no import circle (import-linter,
with the contracts in pyproject.toml), no function over 80 lines, every module named in
docs/layout.md, and the import paths of 0.1 still working, with a warning."""

from __future__ import annotations

import ast
import importlib
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "disagree_triage"
PYPROJECT = ROOT / "pyproject.toml"
LINT = "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"

# Typer commands: their signature is the command's manual (an option per parameter), so only
# their body counts towards the limit.
TYPER_COMMANDS = {
    "cli/assemble.py": "assemble_cli",
    "cli/convert.py": "convert_cli",
    "cli/diff.py": "diff_cli",
    "cli/evaluate.py": "evaluate_cli",
    "cli/predict.py": "predict_cli",
    "cli/report.py": "report_cli",
    "cli/simulate.py": "simulate_annotator_cli",
    "cli/train.py": "train_cli",
}
MAX_LINES = 80


def lint_imports(src: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports with our contracts over the package under `src`."""
    return subprocess.run(
        [sys.executable, "-c", LINT, "--config", str(PYPROJECT), "--no-cache"],
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(src), *sys.path]), "COLUMNS": "200"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_stages_import_one_way_and_in_no_circle(tmp_path):
    pytest.importorskip("importlinter", reason="pip install -e '.[test]' (import-linter)")
    result = lint_imports(PACKAGE.parent, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # Prodigy's format and the LLM backends are siblings that know nothing of each other
        ("prodigy/read.py", "from ..llm import structured", "Stages import one way"),
        # two modules of one stage importing each other
        ("triage/differences.py", "from . import evidence", "No import circles"),
    ],
)
def test_an_import_against_the_layers_breaks_a_contract(tmp_path, module, line, broken):
    """The check is real: the same contracts over a copy of the package with one bad import."""
    pytest.importorskip("importlinter", reason="pip install -e '.[test]' (import-linter)")
    copy = tmp_path / "src" / "disagree_triage"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / module
    target.write_text(target.read_text() + f"\n{line}  # noqa\n")
    result = lint_imports(copy.parent, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 kept, 1 broken" in result.stdout
    assert re.search(rf"{re.escape(broken)}.*BROKEN", result.stdout, re.DOTALL)


def function_lengths() -> list[tuple[str, str, int]]:
    """(module, function, lines) of every function in the package; a Typer command's counted
    from its body."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            start = node.lineno
            if TYPER_COMMANDS.get(module) == node.name:
                body = node.body
                if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                    body = body[1:]  # the docstring is the command's --help
                start = body[0].lineno
            found.append((module, node.name, node.end_lineno - start + 1))  # type: ignore[operator]
    return found


def test_no_function_is_longer_than_80_lines():
    lengths = function_lengths()
    assert {(m, f) for m, f, _ in lengths} >= set(TYPER_COMMANDS.items())  # the list is current
    too_long = [f"{m}: {f} ({n} lines)" for m, f, n in lengths if n > MAX_LINES]
    assert not too_long, "split these: " + "; ".join(too_long)


def test_the_layout_page_names_every_module():
    """docs/layout.md names each module by its path in the package (`triage/scoring.py`) and
    each package by its folder (`triage/scorers/`)."""
    page = (ROOT / "docs" / "layout.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`([\w/]+(?:\.py|/))`", page))
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        folder = path.name == "__init__.py"
        name = f"{relative.parent.as_posix()}/" if folder else relative.as_posix()
        if name != "./" and name not in named:
            missing.append(name)
    assert not missing, f"docs/layout.md does not name: {', '.join(missing)}"


# 0.1's path -> a name that must still be reachable there
OLD_PATHS = {
    "scorers": "scorers",
    "textcat_scorers": "textcat_scorers",
    "target_scorers": "target_scorers",
    "exports": "get_queue_format",
    "exports.base": "queue_formats",
    "exports.doccano": "utf16_spans",
    "imports": "read_annotations",
    "imports.doccano": "doccano_records",
    "scoring": "QueuePolicy",
    "compare": "SpanKey",
    "categories": "option_ids",
    "evidence": "Reliability",
    "kinds": "TaskKind",
    "labels": "LabelMap",
    "jsonl": "read_jsonl",
    "outputs": "write_atomic",
    "fewshot": "write_examples_file",
    "report_html": "write_html",
    "pipeline": "LLM_FACTORY",
    "dask_predict": "plan_partitions",
    "llm.batch": "split_requests",
    "llm.checks": "check_doc",
}


def test_the_old_import_paths_still_work_and_warn():
    from disagree_triage import _moved

    assert set(OLD_PATHS) <= set(_moved.MOVED)
    for old in sorted(_moved.MOVED):
        name = f"disagree_triage.{old}"
        for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[loaded]
        new = _moved.MOVED[old][0]
        with pytest.warns(DeprecationWarning, match=rf"{re.escape(name)} has moved to .*{new}"):
            module = importlib.import_module(name)
        if old in OLD_PATHS:
            attribute = OLD_PATHS[old]
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # a name is read without a second warning
                value = getattr(module, attribute)
            holders = [importlib.import_module(f"disagree_triage.{m}") for m in _moved.MOVED[old]]
            assert any(getattr(h, attribute, None) is value for h in holders)


def test_the_registries_are_the_same_objects_by_both_paths():
    """A scorer registered through the old path is found by the new one (--code files)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from disagree_triage.exports.base import queue_formats as old_formats
        from disagree_triage.scorers import scorers as old_scorers
    from disagree_triage.formats import queue_formats
    from disagree_triage.triage.scorers import scorers

    assert old_scorers is scorers and old_formats is queue_formats
