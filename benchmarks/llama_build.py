"""The portable llama.cpp build (.ci/llama-cpp.sh) against a native one: embedded-LLM speed.

The portable build uses AVX2/FMA/F16C/BMI2 and nothing newer, so that it runs on every x86-64
machine from 2013 on; a native build (`-march=native`, llama-cpp-python's default) also uses
AVX-512 where the build machine advertises it. What does that cost? This script predicts the same
texts with `configs/local.cfg` under each build, alternating (portable, native, portable, ...)
so that both see the same machine load, each run with an empty response cache, and prints tokens
per second (prompt + completion, from the backend's own counts) and the ratio.

The native build is not installed anywhere: build its wheel, unpack it into a folder, and name
the folder; it is put first on PYTHONPATH so that it shadows the venv's llama_cpp:

    pip wheel --no-deps --no-cache-dir --no-binary llama-cpp-python -w /tmp/native \\
        llama-cpp-python==0.3.36
    pip install --no-deps --target /tmp/native-target /tmp/native/llama_cpp_python-*.whl
    python benchmarks/llama_build.py --native /tmp/native-target --texts 50 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "data" / "corpora" / "wikinews_headlines.jsonl"

# Run in a child process per build: one process cannot load two builds of the same library.
ONE_RUN = """
import json, sys, time
from itertools import islice
from pathlib import Path
import llama_cpp
from disagree_triage import predict_file
from disagree_triage.predict.pipeline import load_pipeline

config, corpus, out, texts = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
nlp = load_pipeline(config)
sample = Path(out).with_suffix(".in.jsonl")
with open(corpus) as source:
    sample.write_text("".join(islice(source, texts)))
warm = Path(out).with_suffix(".warm.jsonl")
warm.write_text('{"text": "Warm-up: the model file is loaded and paged in."}\\n')
predict_file(nlp, warm, out.with_suffix(".warm.out"))  # loads the model: not timed
start = time.perf_counter()
summary = predict_file(nlp, sample, out)
seconds = time.perf_counter() - start
stats = summary.backends[0]
features = llama_cpp.llama_print_system_info().decode()
print(json.dumps({
    "seconds": seconds, "texts": summary.written, "cached": stats.cached,
    "tokens": stats.prompt_tokens + stats.completion_tokens,
    "avx512": "AVX512 = 1" in features,
}))
"""


def run_once(native: Path | None, texts: int, config: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "DISAGREE_CACHE_DIR": folder}  # every answer really computed
        if native is not None:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(native), env.get("PYTHONPATH")]))
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                ONE_RUN,
                str(config),
                str(CORPUS),
                f"{folder}/out.jsonl",
                str(texts),
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        raise SystemExit(f"run failed ({done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["cached"] == 0, "an answer came from a cache: the runs would not compare"
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--native", type=Path, required=True, help="folder holding a native llama_cpp"
    )
    parser.add_argument("--texts", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "local.cfg")
    args = parser.parse_args()
    if not CORPUS.exists():
        raise SystemExit(f"{CORPUS} is absent (../shared/data beside the repository)")
    rates: dict[str, list[float]] = {"portable": [], "native": []}
    for round_ in range(args.rounds):
        for name, native in (("portable", None), ("native", args.native)):
            result = run_once(native, args.texts, args.config)
            rate = result["tokens"] / result["seconds"]
            rates[name].append(rate)
            print(
                f"round {round_ + 1} {name:8} AVX-512 {'on ' if result['avx512'] else 'off'} "
                f"{result['texts']} texts {result['seconds']:6.1f} s "
                f"{rate:7.1f} tokens/s {result['seconds'] / result['texts']:.2f} s/text",
                flush=True,
            )
    portable = statistics.median(rates["portable"])
    native = statistics.median(rates["native"])
    print(f"median tokens/s: portable {portable:.1f}, native {native:.1f}")
    print(f"portable / native: {portable / native:.3f}")


if __name__ == "__main__":
    main()
