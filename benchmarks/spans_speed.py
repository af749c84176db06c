"""Words/s of `disagree predict --spans` against raw `nlp.pipe` of the same spancat pipeline, in
one process, with and without --scores.

    python benchmarks/spans_speed.py [--model DIR] [--limit 3000] [--repeat 3]

The pipeline is the test suite's spancat (tests/spancat_model.py: wikigold, n-gram suggester
1-3, trained once and cached) unless --model names another; the texts are
../shared/data/corpora/wikinews_sentences.jsonl. Prints:
- predict (JSONL in, spans_manual JSONL out) vs raw nlp.pipe over the same texts: the overhead of
  reading, building tasks and writing; goal >= 0.95;
- predict --scores (spancat's own probabilities and near misses, got by lowering its threshold
  for the run) vs the same raw nlp.pipe; goal >= 0.95 as well;
- what a second pass would cost instead: raw nlp.pipe, then spancat.predict again on each
  batch (the candidates' scores without the lowered threshold).
Words/s are the best of --repeat rounds; each round runs every variant once in turn, and a
ratio is the median over the rounds of that round's ratio, so that a busy spell of another
process slows both sides of a ratio alike and one slow run decides nothing.
Time is this process's CPU time (`--clock cpu`, the default): on a shared machine, wall time
measures the neighbours as much as the code; `--clock wall` for an idle one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from itertools import islice
from pathlib import Path

import spacy

from disagree_triage import predict_file

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the model builder the tests use
CORPUS = ROOT.parent / "shared" / "data" / "corpora" / "wikinews_sentences.jsonl"


def rounds(
    repeat: int, runs: dict[str, Callable[[], None]], clock: Callable[[], float]
) -> dict[str, list[float]]:
    """The times of each run in each of `repeat` rounds, the runs taking turns within a round."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            start = clock()
            run()
            times[name].append(clock() - start)
    return times


def ratio(times: dict[str, list[float]], name: str) -> float:
    """The median over the rounds of raw's time / `name`'s time (>1: `name` is faster)."""
    return statistics.median(r / t for r, t in zip(times["raw"], times[name], strict=True))


def model_path(named: str | None) -> str:
    if named:
        return named
    from spancat_model import spancat_model

    return str(spancat_model().path)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None, help="a spancat pipeline (default: the tests')")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--limit", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    args = parser.parse_args()
    if not args.corpus.exists():
        sys.exit(f"corpus not found: {args.corpus} (it lies in ../shared/data beside the repo)")
    model = model_path(args.model)
    lines = args.corpus.read_text(encoding="utf-8").splitlines(True)[: args.limit]
    texts = [json.loads(line)["text"] for line in lines]
    nlp = spacy.load(model)
    spancat = next(pipe for _, pipe in nlp.pipeline if hasattr(pipe, "suggester"))
    words = sum(len(doc) for doc in nlp.tokenizer.pipe(texts))
    print(f"{len(texts):,} texts, {words:,} words, model {model}, components {nlp.pipe_names}, "
          f"{args.clock} time")  # fmt: skip

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.jsonl"
        corpus.write_text("".join(lines), encoding="utf-8")
        out = Path(tmp) / "out.jsonl"

        def raw() -> None:
            for _ in nlp.pipe(texts, batch_size=args.batch_size):
                pass

        def second_pass() -> None:
            docs = nlp.pipe(texts, batch_size=args.batch_size)
            while batch := list(islice(docs, args.batch_size)):
                spancat.predict(batch)

        def predict(scores: bool) -> Callable[[], None]:
            def run() -> None:
                predict_file(nlp, corpus, out, annotator="bench", batch_size=args.batch_size,
                             overwrite=True, scores=scores)  # fmt: skip

            return run

        raw()  # warm-up: first batches allocate
        runs = {"raw": raw, "predict": predict(False), "scores": predict(True),
                "second": second_pass}  # fmt: skip
        clock = time.process_time if args.clock == "cpu" else time.perf_counter
        times = rounds(args.repeat, runs, clock)

    def wps(name: str) -> str:
        return f"{words / min(times[name]):>10,.0f} words/s"

    print(f"raw nlp.pipe                          : {wps('raw')}")
    print(f"disagree predict --spans              : {wps('predict')}")
    print(f"disagree predict --spans --scores     : {wps('scores')}")
    print(f"raw nlp.pipe + spancat.predict again  : {wps('second')}")
    print(f"ratio predict / raw                   : {ratio(times, 'predict'):.3f}  (goal >= 0.95)")
    print(f"ratio predict --scores / raw          : {ratio(times, 'scores'):.3f}  (goal >= 0.95)")
    print(f"ratio second pass / raw               : {ratio(times, 'second'):.3f}  (avoided)")


if __name__ == "__main__":
    main()
