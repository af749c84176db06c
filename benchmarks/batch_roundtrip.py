"""`predict --batch`: a round trip of N prompts through a loopback Batch-API server.

    python benchmarks/batch_roundtrip.py [--texts 10000] [--max-requests 4000]

The server (tests/batch_server.py) implements OpenAI's files and batches endpoints and answers
every request of a batch when it is first retrieved. The prompts are submitted (split into
batches of at most --max-requests, to exercise the split), collected, and collected again.
Checked: every record written, none with meta.llm_error, 0 chat requests seen by the server
and 0 sent by the backend, the second collect's OUTPUT identical (SHA-256), and OUTPUT
identical to the live path's over the same server (the baseline, run in the same process at
max_concurrency 16; its cache is its own).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from batch_server import BatchServer  # noqa: E402
from disagree_triage import predict_file  # noqa: E402
from disagree_triage.predict import batch  # noqa: E402
from llm_servers import GOOD, KEY_ENV, write_config  # noqa: E402


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def timed(step: str, call, *args, **kwargs):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = call(*args, **kwargs)
    seconds = time.perf_counter() - start
    print(f"{step:<28} {seconds:8.1f} s", flush=True)
    return result, seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--texts", type=int, default=10_000)
    parser.add_argument("--max-requests", type=int, default=4_000)
    parser.add_argument("--no-live", action="store_true", help="skip the live baseline")
    args = parser.parse_args()
    os.environ[KEY_ENV] = "sk-benchmark-not-a-real-key"

    with BatchServer(lambda body: GOOD) as server, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ["DISAGREE_CACHE_DIR"] = str(folder / "cache")
        corpus = folder / "corpus.jsonl"
        with corpus.open("w") as stream:
            for i in range(args.texts):
                stream.write(json.dumps({"text": f"Apple opened store number {i} today."}) + "\n")
        (folder / "batch").mkdir()
        config = write_config(folder / "batch", server.base_url, max_concurrency=16)
        out = folder / "batch" / "out.jsonl"

        sent, submit_s = timed(
            "submit", batch.submit, config, corpus, out, max_requests=args.max_requests
        )
        got, collect_s = timed("collect", batch.collect, config, corpus, out)
        first = sha(out)
        again, again_s = timed("collect again", batch.collect, config, corpus, out)
        tasks = [json.loads(line) for line in out.read_text().splitlines()]
        errors = sum(1 for t in tasks if "llm_error" in t.get("meta", {}))
        (stats,) = got.predict.backends
        (stats_again,) = again.predict.backends
        request_mb = sum(job.bytes for job in sent.jobs) / 1e6
        live_seen = server.live_requests
        unchanged = sha(out) == first

        live_s = None
        same_as_live = None
        if not args.no_live:
            (folder / "live").mkdir()
            live_config = write_config(
                folder / "live",
                server.base_url,
                max_concurrency=16,
                cache_path=str(folder / "live" / "responses.sqlite"),
            )
            live_out = folder / "live" / "out.jsonl"
            _, live_s = timed("live (16 in flight)", predict_file, live_config, corpus, live_out)
            same_as_live = live_out.read_bytes() == out.read_bytes()

    print()
    print(f"prompts                         {args.texts:,}")
    print(f"batches (max {args.max_requests:,} requests)      {len(sent.jobs)}")
    print(f"request files                   {request_mb:.1f} MB")
    print(f"records written / llm_error     {len(tasks):,} / {errors:,}")
    print(f"answers read from the batches   {got.answered:,}")
    print(f"chat requests: server / backend {live_seen} / {stats.requests}")
    print(f"second collect: same SHA-256    {unchanged}  (cache hits {stats_again.cached:,})")
    print(f"submit + collect                {submit_s + collect_s:.1f} s")
    if live_s is not None:
        print(f"live baseline                   {live_s:.1f} s ({args.texts:,} requests)")
        print(f"(submit + collect) / live       {(submit_s + collect_s) / live_s:.2f}")
        print(f"OUTPUT identical to live        {same_as_live}")
    ok = (
        len(tasks) == args.texts
        and errors == 0
        and live_seen == 0
        and stats.requests == 0
        and unchanged
        and same_as_live is not False
    )
    print("targets met" if ok else "TARGETS MISSED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
