"""--calibrate: each model's reliability counted on annotated examples (`Reliability.fit`), so
that the target scorers rank by how often each model is right, not by a default. The examples
used are left out of the queue: they are annotated already.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..core.errors import DisagreeError
from ..core.kinds import TaskKind
from .align import AlignedExample, FileStats, align_files, check_gold_kind
from .evidence import Reliability
from .scoring import Scoring, first_record


def check_calibration(scoring: Scoring) -> None:
    """Reliabilities are learnt for entities and spans; checked before work."""
    if not scoring.kind.is_span_kind:
        raise DisagreeError(
            "--calibrate learns entity and span reliabilities; the files hold categories"
        )


def fit_reliability(
    annotated: Path,
    paths: Sequence[str | Path],
    scoring: Scoring,
    skip_invalid: bool = False,
    *,
    shown: str | Path | None = None,
) -> tuple[Reliability, set[int]]:
    """Each model's reliability counted on the accepted examples of `annotated` (Prodigy JSONL;
    `shown` is the name the user gave it) that the prediction files share, and their input
    hashes."""
    shown = annotated if shown is None else shown
    check_gold_kind(scoring.kind, TaskKind.of_record(first_record(annotated)), shown)
    names = ["annotated", *scoring.models]
    if "annotated" in scoring.models:
        names[0] = "annotated (--calibrate)"
    stats = [FileStats(str(p), n) for p, n in zip([shown, *paths], names, strict=True)]
    observations = []
    hashes: set[int] = set()
    for example in align_files(
        [annotated, *paths],
        names,
        stats,
        kind=scoring.kind,
        skip_invalid=skip_invalid,
        gold=True,
    ):
        gold, tasks = example.tasks[0], example.tasks[1:]
        if gold is None or any(t is None for t in tasks):
            continue
        hashes.add(example.input_hash)
        versions = scoring.versions(AlignedExample.of(example.input_hash, example.text, tasks))
        observations.append((versions, frozenset(gold.span_keys)))
    if not observations:
        raise DisagreeError(
            f"{shown}: --calibrate found no accepted annotation of a text that every "
            "prediction file holds; is it an export of this corpus's queue?"
        )
    return Reliability.fit(observations, scoring.models), hashes
