"""What reading gold from another tool's export costs, and how fast `convert` writes `.spacy`.

    python benchmarks/gold_formats.py [--gold ../shared/data/gold/wikigold.jsonl] [--repeat 3]

1. A real gold file (Prodigy JSONL, ../shared/data/gold/) written as the exports of Label
   Studio (JSON, JSON-MIN) and doccano (JSONL), with the offsets each tool uses.
2. In one process: `evaluate_files` with each as gold against the Prodigy gold itself twice
   as the "models" (reading and joining is all that is timed; the figures are equal, checked),
   best of --repeat; the ratio to the Prodigy gold (goal: <= 2, the conversion is one pass).
3. `convert_file` of the Label Studio export to `.spacy`: docs a second, bytes a doc, and how
   many entities the blank English tokeniser had to contract or drop.
4. `diff --agreements agree.spacy` against `--agreements agree.jsonl`: the gold as one model
   and a copy missing every fifth text's first entity as the other (so most texts agree),
   best of --repeat each; the ratio is what tokenising and the DocBin cost.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from disagree_triage import diff_files
from disagree_triage.convert import convert_file
from disagree_triage.evaluate import evaluate_files
from disagree_triage.formats.doccano import utf16_spans

ROOT = Path(__file__).resolve().parent.parent
GOLD = ROOT.parent / "shared" / "data" / "gold" / "wikigold.jsonl"


def write_exports(gold: Path, folder: Path) -> dict[str, Path]:
    records = [json.loads(line) for line in gold.read_text(encoding="utf-8").splitlines()]
    full, flat, doccano = [], [], []
    for i, record in enumerate(records):
        text = record["text"]
        spans = [(s["start"], s["end"], s["label"]) for s in record.get("spans") or []]
        values = [{"start": s, "end": e, "text": text[s:e], "labels": [label]}
                  for s, e, label in spans]  # fmt: skip
        result = [{"from_name": "label", "to_name": "text", "type": "labels", "value": v}
                  for v in values]  # fmt: skip
        created = "2026-11-26T09:00:00.000000Z"
        full.append({"id": i, "data": {"text": text}, "annotations": [{"id": i, "result": result,
                     "was_cancelled": False, "created_at": created}]})  # fmt: skip
        flat.append({"text": text, "id": i, "annotation_id": i, "label": values,
                     "created_at": created})  # fmt: skip
        units = utf16_spans(text, spans)
        doccano.append({"id": i, "text": text, "label": [list(u) for u in units]})
    paths = {
        "prodigy": gold,
        "labelstudio JSON": folder / "ls.json",
        "labelstudio JSON-MIN": folder / "ls-min.json",
        "doccano": folder / "doccano.jsonl",
    }
    paths["labelstudio JSON"].write_text(json.dumps(full, indent=2), encoding="utf-8")
    paths["labelstudio JSON-MIN"].write_text(json.dumps(flat, indent=2), encoding="utf-8")
    paths["doccano"].write_text("".join(json.dumps(r) + "\n" for r in doccano), encoding="utf-8")
    return paths


def best_of(repeat: int, run) -> tuple[float, object]:
    times, value = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        value = run()
        times.append(time.perf_counter() - start)
    return min(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gold", type=Path, default=GOLD)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = write_exports(args.gold, folder)
        models = [args.gold, args.gold]
        n = sum(1 for _ in args.gold.open(encoding="utf-8"))
        print(f"gold: {args.gold.name}, {n:,} texts")
        base = None
        figures = None
        for name, path in paths.items():
            seconds, report = best_of(
                args.repeat, lambda p=path: evaluate_files(p, models, names=["a", "b"])
            )
            got = json.dumps(report.scores[0].as_dict())  # type: ignore[attr-defined]
            figures = figures or got
            assert got == figures, f"{name}: other figures than the Prodigy gold"
            base = base or seconds
            print(f"  evaluate, gold as {name:<22} {seconds:6.3f} s  ratio {seconds / base:4.2f}")
        out = folder / "train.spacy"
        seconds, summary = best_of(
            args.repeat,
            lambda: convert_file(paths["labelstudio JSON"], out, overwrite=True),
        )
        docbin = summary.docbin  # type: ignore[attr-defined]
        print(
            f"  convert → .spacy: {docbin.docs / seconds:,.0f} docs/s, "
            f"{out.stat().st_size / docbin.docs:,.0f} bytes a doc; {docbin.entities:,} entities, "
            f"{docbin.adjusted:,} contracted, {docbin.misaligned:,} inside one token, "
            f"{docbin.overlapping:,} overlapping"
        )

        other = folder / "other.jsonl"
        with other.open("w", encoding="utf-8") as out:
            for i, line in enumerate(args.gold.read_text(encoding="utf-8").splitlines()):
                record = json.loads(line)
                if i % 5 == 0 and record.get("spans"):
                    record["spans"] = record["spans"][1:]
                out.write(json.dumps(record) + "\n")
        times = {}
        for suffix in (".jsonl", ".spacy"):
            seconds, summary = best_of(
                args.repeat,
                lambda s=suffix: diff_files(
                    [args.gold, other],
                    names=["gold", "other"],
                    output=folder / "q.jsonl",
                    agreements=folder / f"agree{s}",
                    overwrite=True,
                ),
            )
            times[suffix] = seconds
            size = (folder / f"agree{suffix}").stat().st_size
            agreed = summary.agreements_written  # type: ignore[attr-defined]
            print(f"  diff --agreements agree{suffix:<6} {seconds:6.3f} s, {agreed:,} agreements, "
                  f"{size / agreed:,.0f} bytes each")  # fmt: skip
        print(f"  ratio .spacy / .jsonl: {times['.spacy'] / times['.jsonl']:.2f}")


if __name__ == "__main__":
    main()
