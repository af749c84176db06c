"""Each round's local model against the gold, on the texts no round annotated.

The texts a round annotated are what the next model trained on: scored on them, it would
look better than it is. So the gold is cut to the others first (disagree's own reader of
annotated texts, as `diff --exclude` uses it), and `disagree evaluate`'s library function
scores every round's predictions on what is left. This needs a gold file for the whole corpus:
a SIMULATION's luxury (examples/news-gold.jsonl); a real loop measures on an annotated sample
set aside, as `disagree train` does with its held-out share.

    python scripts/scores.py GOLD --annotated R1.jsonl R2.jsonl \
        --predictions P1.jsonl P2.jsonl P3.jsonl --names base,round-1,round-2 --output scores.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from disagree_triage.evaluate import evaluate_files
from disagree_triage.formats.annotated_texts import read_annotated_texts
from disagree_triage.formats.annotations import read_annotations
from disagree_triage.io.jsonl import dumps_line


def held_out_gold(gold: Path, annotated: list[Path], folder: Path) -> tuple[Path, int]:
    """The gold of the texts no round annotated, written to `folder`; (file, texts left out)."""
    done = read_annotated_texts(annotated)
    left_out = 0
    path = folder / "held-out-gold.jsonl"
    with path.open("wb") as out:
        for task in read_annotations(gold):
            if task.input_hash in done:
                left_out += 1
            else:
                out.write(dumps_line(task.record))
    return path, left_out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("gold", type=Path, help="Gold annotations of the whole corpus.")
    parser.add_argument("--annotated", type=Path, nargs="+", required=True,
                        help="Every round's annotated file.")  # fmt: skip
    parser.add_argument("--predictions", type=Path, nargs="+", required=True,
                        help="The local model's predictions, one file per round.")  # fmt: skip
    parser.add_argument("--names", required=True, help="A name per prediction file, with commas.")
    parser.add_argument("--output", type=Path, required=True, help="The JSON file to write.")
    args = parser.parse_args(argv)
    names = args.names.split(",")
    with tempfile.TemporaryDirectory() as folder:
        gold, left_out = held_out_gold(args.gold, args.annotated, Path(folder))
        report = evaluate_files(gold, args.predictions, names=names)
    kept = report.examples  # gold texts every round predicted (the corpus may be a sample)
    scores = {
        "gold": str(args.gold),
        "held_out_texts": kept,
        "annotated_texts": left_out,
        "models": {
            s.name: {
                "exact": s.exact.as_dict(),
                "per_label": {label: prf.as_dict() for label, prf in s.per_label.items()},
            }
            for s in report.scores
        },  # fmt: skip
    }
    args.output.write_text(json.dumps(scores, indent=2) + "\n", encoding="utf-8")
    print(f"scores on the {kept} texts no round annotated ({left_out} annotated left out):")
    for s in report.scores:
        e = s.exact
        print(f"  {s.name:10} P {e.precision:.3f}  R {e.recall:.3f}  F {e.f1:.3f}")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
