"""Categories on real texts: accuracy of a small trained spaCy classifier and of the embedded LLM
(configs/textcat-local.cfg), and whether ranking by their disagreement finds the errors.

    python benchmarks/textcat_triage.py [--per-class 150] [--train 200]

Labelled data as in the tests (tests/textcat_data.py): r/Cooking comments are COOKING,
Wikinews sentences NEWS; the classifier (spaCy bag-of-words textcat, 3 epochs) trains on the
first --train texts of each corpus, and both models predict --per-class texts from the end of
each. `disagree evaluate` then scores both against the source labels and measures, per scorer,
the lift of the errors in the top of the ranking over a random order.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the labelled-data helpers the tests use

from disagree_triage import predict_file  # noqa: E402
from disagree_triage.evaluate import evaluate_files  # noqa: E402
from textcat_data import labelled, train_textcat, write_corpus, write_gold  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--per-class", type=int, default=150)
    parser.add_argument("--train", type=int, default=200)
    args = parser.parse_args()
    train, test = labelled(n_train=args.train, n_test=args.per_class)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        train_textcat(train).to_disk(folder / "bow")
        corpus = write_corpus(folder / "corpus.jsonl", test)
        gold = write_gold(folder / "gold.jsonl", test)
        outputs = []
        for name, model in (
            ("spacy-bow", folder / "bow"),
            ("llm-local", ROOT / "configs" / "textcat-local.cfg"),
        ):
            out = folder / f"{name}.jsonl"
            start = time.perf_counter()
            predict_file(model, corpus, out, textcat="COOKING,NEWS", annotator=name)
            seconds = time.perf_counter() - start
            print(f"{name:<10} predicted {len(test)} texts in {seconds:.1f} s")
            outputs.append(out)
        report = evaluate_files(gold, outputs)
    print(
        f"\n{report.examples} texts, {report.errors} with an error of some model "
        f"(base rate {report.base_rate:.1%})"
    )
    for scores in report.scores:
        print(f"{scores.name:<10} accuracy {scores.accuracy:.3f}  macro-F1 {scores.macro_f1:.3f}")
    print(f"\n{'ranking':<20} {'lift@10':>8} {'lift@50':>8} {'lift@10%':>9} {'ROC-AUC':>8}")
    for name, quality in report.triage.items():
        lift = quality.lift
        print(f"{name:<20} {lift.get(10, float('nan')):8.2f} {lift.get(50, float('nan')):8.2f} "
              f"{lift.get(0.1, float('nan')):9.2f} {quality.auc:8.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
