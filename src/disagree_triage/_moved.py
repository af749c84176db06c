"""The import paths of 0.1's flat layout, kept working for one release (until 0.2).

Each old module is a thin stand-in whose names are read from the modules that hold them now;
importing it warns once with a DeprecationWarning that names the new path. No file stands at
the old paths: a finder on `sys.meta_path` answers for them (see MOVED), so the stand-ins go
away by deleting this module and the line that installs it.

    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", DeprecationWarning)
    ...     from disagree_triage.scorers import scorers as old
    >>> from disagree_triage.triage.scorers.spans import scorers as new
    >>> old is new
    True
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings
from collections.abc import Sequence
from typing import Any

PACKAGE = "disagree_triage"

# old module -> the modules that hold its names now (the first is named in the warning)
MOVED: dict[str, tuple[str, ...]] = {
    "align": ("triage.align",),
    "annotated_texts": ("formats.annotated_texts",),
    "assemble": ("predict.assemble",),
    "beam": ("predict.beam", "core.labels", "prodigy.read"),
    "categories": ("triage.votes", "prodigy.choice"),
    "compare": ("triage.differences", "core.spans"),
    "config_file": ("predict.config_file",),
    "corpus": ("io.corpus",),
    "diversity": ("triage.diversity",),
    "dask_predict": (
        "predict.dask_driver",
        "predict.dask_worker",
        "predict.partitions",
        "predict.options",
    ),
    "docbin": ("formats.docbin",),
    "errors": ("core.errors",),
    "evidence": ("triage.evidence",),
    "exports": ("formats",),
    "exports.argilla": ("formats.argilla",),
    "exports.base": ("formats.queue_format",),
    "exports.doccano": ("formats.doccano",),
    "exports.labelstudio": ("formats.labelstudio",),
    "exports.prodigy": ("formats.prodigy",),
    "fewshot": ("evaluate.fewshot",),
    "imports": ("formats.annotations",),
    "imports.argilla": ("formats.argilla",),
    "imports.base": ("formats.accepted", "core.spans"),
    "imports.doccano": ("formats.doccano",),
    "imports.labelstudio": ("formats.labelstudio",),
    "jsonl": ("io.jsonl",),
    "kinds": ("core.kinds",),
    "labels": ("core.labels",),
    "llm.batch": ("predict.batch", "llm.batch_api"),
    "llm.checks": ("predict.llm_answers",),
    "outputs": ("io.output_files",),
    "pipeline": (
        "predict.pipeline",
        "predict.spacy_llm",
        "predict.config_file",
        "predict.options",
    ),
    "prefill": ("formats.prefill",),
    "redaction": ("core.redaction",),
    "report_html": ("report.html",),
    "resume": ("predict.resume",),
    "scorers": ("triage.scorers.spans", "triage.scorers"),
    "scoring": ("triage.scoring", "triage.queue"),
    "target_scorers": ("triage.scorers.target",),
    "tasks": ("predict.doc_tasks",),
    "textcat_scorers": ("triage.scorers.categories",),
}
# Packages among the old paths: their old submodules are found through them.
_PACKAGES = {"exports", "imports"}


class MovedModule(types.ModuleType):
    """An old path: every name is looked up in the modules that hold it now."""

    __moved_to__: tuple[str, ...]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        for target in self.__moved_to__:
            module = importlib.import_module(target)
            if hasattr(module, name):
                return getattr(module, name)
        raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")

    def __dir__(self) -> list[str]:
        names: set[str] = set()
        for target in self.__moved_to__:
            names.update(dir(importlib.import_module(target)))
        return sorted(names)


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        old = fullname[len(PACKAGE) + 1 :] if fullname.startswith(PACKAGE + ".") else None
        if old not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=old in _PACKAGES)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = MovedModule(spec.name)
        module.__moved_to__ = tuple(
            f"{PACKAGE}.{new}" for new in MOVED[spec.name[len(PACKAGE) + 1 :]]
        )
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        new = module.__moved_to__[0]  # type: ignore[attr-defined]
        warnings.warn(
            f"{module.__name__} has moved to {new}; the old path goes in disagree 0.2",
            DeprecationWarning,
            stacklevel=_importer_level(),
        )
        importlib.import_module(new)  # an old path that no longer imports fails here, at once


def _importer_level() -> int:
    """The stack level of the line that imported the old path: past importlib's frames."""
    frame = sys._getframe(2)
    level = 2
    while frame is not None and (
        frame.f_code.co_filename.startswith("<frozen importlib")
        or frame.f_code.co_filename == __file__
    ):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def install() -> None:
    """Answer for the old paths (once per process)."""
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.append(_Finder())
