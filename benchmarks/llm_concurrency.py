"""docs/s of stock spacy-llm `spacy.GPT-4.v3` against `disagree.OpenAICompatible.v1`.

    python benchmarks/llm_concurrency.py [--texts 200] [--latency 0.2]

A loopback OpenAI-compatible server answers every chat request after --latency seconds (the
time a hosted model takes). Both models run the same task (spacy.NER.v2) over the same texts in
one process. spacy-llm's OpenAI model calls https://api.openai.com/v1/models when it is built;
that probe is patched out here, in the benchmark only, so that it can run offline at all.
Goal: at concurrency C, speed-up over stock >= 0.8 x C. Then the fastest run again: every
answer must come from the cache (0 requests).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from spacy_llm.models.rest.openai.model import OpenAI  # noqa: E402

from disagree_triage.predict.assemble import assemble_pipeline  # noqa: E402
from llm_servers import FaultServer, Reply, write_ner_config  # noqa: E402

ANSWER = "ORGANISATION: Apple\nPERSON:\nDATE:"


def config(folder: Path, name: str, model: dict[str, Any]) -> Path:
    return write_ner_config(folder / f"{name}.cfg", model)


def run(config_path: Path, texts: list[str], batch_size: int) -> float:
    nlp = assemble_pipeline(config_path)
    start = time.perf_counter()
    for _ in nlp.pipe(texts, batch_size=batch_size):
        pass
    return len(texts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--texts", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    args = parser.parse_args()
    os.environ["OPENAI_API_KEY"] = "sk-benchmark-not-a-real-key"
    OpenAI._verify_auth = lambda self: None  # the stock probe of api.openai.com, patched out
    texts = [f"Apple opened store number {i} in town today." for i in range(args.texts)]

    with (
        FaultServer(lambda n, body: Reply(content=ANSWER, delay=args.latency)) as server,
        tempfile.TemporaryDirectory() as tmp,
    ):
        folder = Path(tmp)
        stock = config(
            folder,
            "stock",
            {
                "@llm_models": "spacy.GPT-4.v3",
                "name": "gpt-4",
                "endpoint": f"{server.base_url}/chat/completions",
            },
        )
        before = server.count
        stock_speed = run(stock, texts, batch_size=64)
        print(
            f"stock spacy.GPT-4.v3          : {stock_speed:6.2f} docs/s "
            f"(max in flight {server.max_in_flight}, {server.count - before} requests)"
        )
        cache = folder / "cache.sqlite"
        results = {}
        for c in args.concurrency:
            server.max_in_flight = 0
            ours = config(
                folder,
                f"ours-{c}",
                {
                    "@llm_models": "disagree.OpenAICompatible.v1",
                    "model": "bench",
                    "base_url": server.base_url,
                    "max_concurrency": c,
                    "cache_path": f"{cache}-{c}",
                    "context_length": 4096,
                },
            )
            speed = run(ours, texts, batch_size=64)
            results[c] = (ours, speed)
            print(
                f"disagree, max_concurrency={c:<3}: {speed:6.2f} docs/s "
                f"(max in flight {server.max_in_flight}); speed-up {speed / stock_speed:5.2f}x "
                f"(goal >= {0.8 * c:.1f}x)"
            )
        best = max(args.concurrency)
        before = server.count
        speed = run(results[best][0], texts, batch_size=64)
        print(
            f"again from cache (C={best})      : {speed:8.1f} docs/s, "
            f"requests sent: {server.count - before}"
        )
        print(
            json.dumps(
                {
                    "stock_docs_per_s": stock_speed,
                    **{f"c{c}_docs_per_s": s for c, (_, s) in results.items()},
                }
            )
        )


if __name__ == "__main__":
    main()
