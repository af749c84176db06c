"""The loop as users run it, round after round: does annotating disagree's queue teach
en_core_web_md more than annotating random texts, once the model changes after every round?
(issue 27, part 4; the one-shot version is learning_curve.py.)

    python benchmarks/rounds.py --json docs/rounds.json --plot docs/rounds.png \\
        --markdown rounds.md --work /tmp/rounds                      # the issue's full run
    python benchmarks/rounds.py --files wikigold --strategies random,target-md-sm \\
        --seeds 0 --rounds 2 --k 20 --limit 300 --max-epochs 2        # a smoke run

Per gold file and seed, the split of learning_curve.py (its helpers are imported, not copied):
the texts shuffled with the seed, 30 % held out as the test part, 70 % the pool. Then, per
strategy, ROUNDS rounds of K annotations, each as a user would run it:

1. the queue: the current model predicts the pool texts not yet annotated (`predict_file`,
   beam scores), `diff_files` ranks them (learning_curve.strategies: diff's queue, then the
   texts it leaves out in seeded random order); random is a seeded shuffle;
2. the simulated annotator answers the top K from gold (PERSON and ORG: the labels md and the
   gold files share);
3. `train_pipeline` (disagree train) updates the model: base = the previous round's model,
   trained on this round's K annotations (`--train-on round`, the default: the earlier rounds
   are in the base already; `all`: every annotation so far, which costs a longer training
   each round), `--ner PERSON,ORG`, `--rehearse` on the pool texts not annotated (the base
   model's own predictions), train's defaults otherwise but `--max-epochs` and `--seed`;
4. the new model's exact-match PERSON/ORG F1 on the test part, minus the untouched md's.

Strategies: random; md-uncertainty (md's own beam confidence); target-md-sm and target-md-llm
(`diff --target spacy-md` with en_core_web_sm or the embedded LLM, configs/local.cfg, as the
other model: their predictions never change, so they are made once per file, and the LLM's can
be given with --predictions DIR as llm-FILE.jsonl); a suffix adds an option to a target
strategy: `+calibrated` (`--calibrate` on the rounds so far; round 1 has none yet) and
`+diverse` (`--diversify K --vectors md`: the top K spread over md's document vectors,
diversity.py). Nothing here was tuned on these files: train's defaults, K and the split were
fixed before the first run.

--whole-pool adds a reference: md trained once (same settings) on every pool text's gold, the
most any queue's annotations could hold. If it gains less than 1.5x random's gain at 200, no
order of the pool reaches that target with this training.

--json is written after every round, and a round it holds (with its model in --work) is not
redone: a killed run loses at most one round. One round costs about 1-2 minutes on 2 busy cores
(most of it training); the full run (2 files, 7 strategies, 5 seeds, 4 rounds) is ~280 rounds.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import spacy
import srsly

# en_core_web_md 3.7.1 under spaCy 3.8 says W095 at every load: once is enough.
warnings.filterwarnings("once", message=r"\[W095\]")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import learning_curve as lc  # noqa: E402  (a sibling script, not a package)

from disagree_triage import predict_file  # noqa: E402
from disagree_triage.train import TrainingSettings, TrainOptions, train_pipeline  # noqa: E402

BEAM = 16  # as learning_curve.py's scored md
BASES = {  # strategy -> (prediction files diffed, diff_files options), learning_curve's own
    name: lc.STRATEGIES[name] for name in ("md-uncertainty", "target-md-sm", "target-md-llm")
}
MODIFIERS = ("+calibrated", "+diverse")
WHOLE_POOL = "whole-pool"  # --whole-pool: the reference of every pool text annotated
STRATEGIES = (
    "random",
    "md-uncertainty",
    "target-md-sm",
    "target-md-llm",
    "target-md-sm+calibrated",
    "target-md-llm+calibrated",
    "target-md-sm+diverse",
)


def split_strategy(strategy: str) -> tuple[str, list[str]]:
    """("target-md-sm", ["+calibrated"]) from "target-md-sm+calibrated"; checked."""
    base, *mods = strategy.split("+")
    mods = [f"+{m}" for m in mods]
    if strategy != "random" and base not in BASES or any(m not in MODIFIERS for m in mods):
        sys.exit(f"unknown strategy {strategy!r}: choose from {', '.join(STRATEGIES)}")
    if mods and not base.startswith("target"):
        sys.exit(f"{strategy}: +calibrated and +diverse go with a target-md-* strategy")
    return base, mods


def queue_order(
    strategy: str,
    paths: dict[str, Path],
    remaining: list[str],
    seed: int,
    k: int,
    annotated: Path | None,
) -> list[str]:
    """The remaining pool in the order the strategy's queue puts it (random: a shuffle)."""
    base, mods = split_strategy(strategy)
    if strategy == "random":
        return lc.strategies({}, remaining, seed, ["random"])["random"]
    models, options = BASES[base]
    options = dict(options)
    if "+calibrated" in mods and annotated is not None:
        options["calibrate"] = annotated
    if "+diverse" in mods:
        options.update(diversify=k, vectors=lc.MD)
    table = {strategy: (models, options)}
    return lc.strategies(paths, remaining, seed, [strategy], table)[strategy]


def md_predictions(model: str | Path, texts: list[str], folder: Path) -> Path:
    """The current model's entities with beam scores on `texts` (the pool not annotated)."""
    corpus, out = folder / "remaining.jsonl", folder / "md-scored.jsonl"
    srsly.write_jsonl(corpus, [{"text": t} for t in texts])
    predict_file(
        str(model), corpus, out, ner="PERSON,ORG", annotator="spacy-md", scores=True,
        beam_width=BEAM, overwrite=True,
    )  # fmt: skip
    return out


def write_gold(path: Path, records: list[dict[str, Any]]) -> None:
    """The simulated annotator's answers: gold PERSON and ORG spans, accepted."""
    srsly.write_jsonl(
        path,
        [
            {
                "text": r["text"],
                "spans": [
                    {"start": s, "end": e, "label": lab}
                    for s, e, lab in lc.spans_of(r)
                    if lab in lc.LABELS
                ],
                "answer": "accept",
            }
            for r in records
        ],
    )


def train_and_score(
    args: argparse.Namespace,
    seed: int,
    annotated: Path,
    base: str | Path,
    folder: Path,
    test: list[dict[str, Any]],
    rehearse: Path | None = None,
) -> tuple[Path, float]:
    """`train_pipeline` (disagree train) on `annotated` from `base` into folder/trained, with
    the run's settings; the new model and its PERSON/ORG F1 on the test part."""
    options = TrainOptions(
        labels="PERSON,ORG",
        rehearse=rehearse,
        training=TrainingSettings(seed=seed, max_epochs=args.max_epochs),
        overwrite=True,
    )
    model = train_pipeline([annotated], base, folder / "trained", options).model
    return model, lc.f1(spacy.load(model), test)


def run_chain(
    args: argparse.Namespace,
    name: str,
    strategy: str,
    seed: int,
    split: tuple[list[dict[str, Any]], list[dict[str, Any]]],
    fixed: dict[str, Path],
    results: dict[str, Any],
) -> None:
    """One strategy's rounds on one file and seed; each round saved to --json as it ends."""
    test, pool = split
    by_text = {r["text"]: r for r in pool}
    rounds = results[name].setdefault(strategy, {}).setdefault(str(seed), [])
    work = args.work / name / strategy / f"seed{seed}"
    work.mkdir(parents=True, exist_ok=True)
    model: str | Path = lc.MD
    annotated: list[str] = []
    for r in range(1, args.rounds + 1):
        folder = work / f"round{r}"
        gold = folder / "annotated.jsonl"  # every annotation so far
        if len(rounds) >= r and (folder / "trained" / "model-best").exists():
            model, annotated = (
                folder / "trained" / "model-best",
                annotated + rounds[r - 1]["picked"],
            )
            continue
        del rounds[r - 1 :]  # a round without its model is redone, and all after it
        folder.mkdir(exist_ok=True)
        t0 = time.perf_counter()
        done = set(annotated)
        remaining = [t for t in by_text if t not in done]
        # --calibrate counts each model's errors on the annotated texts: it needs the current
        # model's predictions on them too (and leaves them out of the queue itself).
        calibrating = "+calibrated" in strategy and r > 1
        predicted = remaining + annotated if calibrating else remaining
        paths = dict(fixed)
        if strategy != "random":
            paths["spacy-md-scored"] = (
                fixed["spacy-md-scored"] if r == 1 else md_predictions(model, predicted, folder)
            )
        before = work / f"round{r - 1}" / "annotated.jsonl" if calibrating else None
        order = queue_order(strategy, paths, predicted, seed * 100 + r, args.k, before)
        picked = [t for t in order if t not in done][: args.k]
        annotated = annotated + picked
        write_gold(gold, [by_text[t] for t in annotated])
        trained_on = gold
        if args.train_on == "round":
            trained_on = folder / "this-round.jsonl"
            write_gold(trained_on, [by_text[t] for t in picked])
        rest = folder / "not-annotated.jsonl"
        srsly.write_jsonl(rest, [{"text": t} for t in remaining if t not in set(picked)])
        t1 = time.perf_counter()
        model, score = train_and_score(args, seed, trained_on, model, folder, test, rehearse=rest)
        t2 = time.perf_counter()
        gain = score - results[name]["baseline"][str(seed)]
        n_spans = lc.gold_span_count(by_text[t] for t in picked)
        rounds.append(
            {
                "f1": score,
                "gain": gain,
                "gold_spans": n_spans,
                "seconds": {"queue": t1 - t0, "train": t2 - t1, "total": time.perf_counter() - t0},
                "picked": picked,  # the texts annotated this round
            }
        )
        print(
            f"  {name} {strategy:>24} seed {seed} round {r}: F1 {score:.3f} gain {gain:+.3f}, "
            f"{n_spans} gold spans (queue {t1 - t0:.0f} s, train {t2 - t1:.0f} s)",
            file=sys.stderr,
        )
        if args.json:
            srsly.write_json(args.json, results)


def run_whole_pool(
    args: argparse.Namespace,
    name: str,
    seed: int,
    split: tuple[list[dict[str, Any]], list[dict[str, Any]]],
    results: dict[str, Any],
) -> None:
    """The reference no queue can pass by much: every pool text annotated (3.5x the texts of
    4 rounds of 50 on BTC, 6x on wikigold), md trained on them once with the rounds' settings.
    A queue's 200 annotations are a subset of these: if all of them gain less than 1.5x random's
    200, that target is out of reach for any order of the pool with this training."""
    test, pool = split
    found = results[name].setdefault(WHOLE_POOL, {})
    if str(seed) in found:
        return
    folder = args.work / name / WHOLE_POOL / f"seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    gold = folder / "annotated.jsonl"
    write_gold(gold, pool)
    t0 = time.perf_counter()
    _, score = train_and_score(args, seed, gold, lc.MD, folder, test)
    seconds = time.perf_counter() - t0
    gain = score - results[name]["baseline"][str(seed)]
    n_spans = lc.gold_span_count(pool)
    found[str(seed)] = [
        {"f1": score, "gain": gain, "gold_spans": n_spans, "texts": len(pool),
         "seconds": {"train": seconds}}
    ]  # fmt: skip
    print(
        f"  {name} {WHOLE_POOL:>24} seed {seed}: {len(pool)} texts, F1 {score:.3f} "
        f"gain {gain:+.3f} (train {seconds:.0f} s)",
        file=sys.stderr,
    )
    if args.json:
        srsly.write_json(args.json, results)


def run(args: argparse.Namespace, cache: Path, results: dict[str, Any]) -> None:
    """Every seed, file and strategy in turn (seeds outermost, strategies innermost, so a run
    cut short has every strategy on both files for the first seeds)."""
    needed = {m for s in args.strategies if s != "random" for m in BASES[split_strategy(s)[0]][0]}
    files = {}
    for name in args.files:
        records = lc.read_gold(name, args.limit)
        texts = [r["text"] for r in records]
        files[name] = records, lc.predictions(cache, name, texts, args.predictions, needed)
    for seed in args.seeds:
        for name, (records, fixed) in files.items():
            shuffled = list(records)
            random.Random(seed).shuffle(shuffled)  # learning_curve.run's split, to the line
            n_test = round(lc.TEST_SHARE * len(shuffled))
            test, pool = shuffled[:n_test], shuffled[n_test:]
            baseline = results.setdefault(name, {}).setdefault("baseline", {})
            if str(seed) not in baseline:
                baseline[str(seed)] = lc.f1(spacy.load(lc.MD), test)
            print(
                f"{name} seed {seed}: test {len(test)}, pool {len(pool)}, "
                f"md F1 {baseline[str(seed)]:.3f}",
                file=sys.stderr,
            )
            for strategy in args.strategies:
                try:
                    run_chain(args, name, strategy, seed, (test, pool), fixed, results)
                except Exception:  # one broken strategy must not end a night's run
                    traceback.print_exc()
                    print(f"  {name} {strategy} seed {seed}: failed, going on", file=sys.stderr)
            if args.whole_pool:
                run_whole_pool(args, name, seed, (test, pool), results)


def gains(results: dict[str, Any], name: str, strategy: str, rounds: int) -> list[list[float]]:
    """Per round, each complete seed's F1 gain (a seed counts once it has every round)."""
    by_seed = results[name].get(strategy, {})
    done = [runs for runs in by_seed.values() if len(runs) >= rounds]
    return [[runs[r]["gain"] for runs in done] for r in range(rounds)]


def table(results: dict[str, Any], settings: dict[str, Any]) -> str:
    k, n = settings["k"], settings["rounds"]
    lines = []
    for name, found in results.items():
        if name == "settings":
            continue
        base = ", ".join(f"seed {s}: {f:.3f}" for s, f in found["baseline"].items())
        head = [
            "| strategy | seeds | "
            + " | ".join(f"{k * (r + 1)} annotated" for r in range(n))
            + " |",
            "|---|---:|" + "---:|" * n,
        ]
        lines += [
            f"\n### Rounds, {name}: F1 gain over the untouched md (its F1: {base})\n",
            "Mean over seeds (each seed's gain); × random's and × md-uncertainty's mean gain.\n",
            *head,
        ]
        ref = {s: gains(results, name, s, n) for s in ("random", "md-uncertainty")}
        for strategy in [s for s in STRATEGIES if s in found]:
            per_round = gains(results, name, strategy, n)
            if not per_round[0]:
                continue
            cells = []
            for r, values in enumerate(per_round):
                cell = (
                    f"**{statistics.mean(values):+.3f}** ("
                    + ", ".join(f"{v:+.3f}" for v in values)
                    + ")"
                )
                for short, of in (("rnd", "random"), ("unc", "md-uncertainty")):
                    # a ratio to a gain at or below 0 reads as nonsense: left out
                    if (
                        ref[of][r]
                        and strategy not in ("random", of)
                        and statistics.mean(ref[of][r]) > 0
                    ):
                        ratio = statistics.mean(values) / statistics.mean(ref[of][r])
                        cell += f" {ratio:.2f}× {short}"
                cells.append(cell)
            lines.append(f"| {strategy} | {len(per_round[0])} | " + " | ".join(cells) + " |")
        lines += whole_pool_lines(found, ref["random"][-1], k * n)
        lines += ["\nGold PERSON/ORG spans annotated so far (mean over seeds): the cost.\n", *head]
        for strategy in [s for s in STRATEGIES if s in found]:
            done = [runs for runs in found[strategy].values() if len(runs) >= n]
            spans = [[sum(one["gold_spans"] for one in runs[: r + 1]) for runs in done]
                     for r in range(n)]  # fmt: skip
            if spans[0]:
                cells = [f"{statistics.mean(v):.0f}" for v in spans]
                lines.append(f"| {strategy} | {len(spans[0])} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def whole_pool_lines(found: dict[str, Any], random_last: list[float], annotated: int) -> list[str]:
    """The whole-pool reference under a table: its gain, and what 1.5x random's would be."""
    if WHOLE_POOL not in found:
        return []
    runs = list(found[WHOLE_POOL].values())
    values = [one[0]["gain"] for one in runs]
    line = (
        f"\nEvery pool text annotated ({runs[0][0]['texts']:,} texts, {len(values)} seeds, md "
        f"trained once): **{statistics.mean(values):+.3f}** ("
        + ", ".join(f"{v:+.3f}" for v in values)
        + ")"
    )
    if random_last and statistics.mean(random_last) > 0:
        goal = 1.5 * statistics.mean(random_last)
        line += f"; 1.5× random's gain at {annotated} annotations would be {goal:+.3f}."
    return [line]


def without_texts(results: dict[str, Any]) -> dict[str, Any]:
    """The results with each round's picked texts left out (they are for resuming a run)."""
    slim: dict[str, Any] = {}
    for name, found in results.items():
        if name == "settings":
            slim[name] = found
            continue
        slim[name] = {
            strategy: by_seed
            if strategy == "baseline"
            else {
                seed: [{k: v for k, v in one.items() if k != "picked"} for one in rounds]
                for seed, rounds in by_seed.items()
            }
            for strategy, by_seed in found.items()
        }
    return slim


def plot(results: dict[str, Any], settings: dict[str, Any], path: Path) -> None:
    k, n = settings["k"], settings["rounds"]
    names = [name for name in results if name != "settings"]
    fig, axes = lc.panels(len(names))
    xs = [k * r for r in range(n + 1)]  # 0: the untouched md, gain 0 by definition
    for ax, name in zip(axes, names, strict=True):
        for i, strategy in enumerate(STRATEGIES):
            per_round = gains(results, name, strategy, n) if strategy in results[name] else []
            if not per_round or not per_round[0]:
                continue
            per_round = [[0.0], *per_round]
            means = [statistics.mean(v) for v in per_round]
            style = "--" if strategy == "random" else "-"
            ax.plot(xs, means, style, marker="o", color=f"C{i}",
                    label=f"{strategy} ({len(per_round[1])} seeds)")  # fmt: skip
            lows, highs = [min(v) for v in per_round], [max(v) for v in per_round]
            ax.fill_between(xs, lows, highs, color=f"C{i}", alpha=0.12)
        if WHOLE_POOL in results[name]:
            values = [one[0]["gain"] for one in results[name][WHOLE_POOL].values()]
            ax.axhline(statistics.mean(values), color="grey", linestyle=":",
                       label=f"every pool text annotated ({len(values)} seeds)")  # fmt: skip
        lc.finish_panel(
            ax,
            title=f"{name}: rounds of {k} (line: mean, band: seeds' range)",
            xlabel="texts annotated so far",
            ylabel="F1 gain over md, PERSON + ORG",
            xticks=xs,
        )
    lc.save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description="md's F1 round after round, per strategy")
    parser.add_argument("--files", type=lambda s: s.split(","), default=list(lc.FILES))
    parser.add_argument(
        "--strategies", type=lambda s: [x for x in s.split(",") if x], default=list(STRATEGIES)
    )
    parser.add_argument("--seeds", type=lc.comma_ints, default=[0, 1, 2, 3, 4])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--k", type=int, default=50, help="annotations per round")
    parser.add_argument("--max-epochs", type=int, default=TrainingSettings().max_epochs)
    parser.add_argument(
        "--train-on",
        choices=("round", "all"),
        default="round",
        help="train each round's model on that round's annotations (round) or on all so far",
    )
    parser.add_argument(
        "--whole-pool",
        action="store_true",
        help="also train md once on every pool text's gold: the reference no queue passes",
    )
    parser.add_argument("--limit", type=int, help="use only the first N texts of each file")
    parser.add_argument(
        "--predictions", type=Path, help="folder of llm-FILE.jsonl; md/sm cached there too"
    )
    parser.add_argument("--work", type=Path, help="round folders (models): kept, reused")
    parser.add_argument("--json", type=Path, help="raw results: rounds it holds are not redone")
    parser.add_argument("--markdown", type=Path, help="write the table here too")
    parser.add_argument("--plot", type=Path, help="PNG of the mean F1 gain per round")
    parser.add_argument(
        "--figures-json", type=Path, help="every run merged, without the annotated texts (docs/)"
    )
    parser.add_argument("--report-only", action="store_true", help="table and plot of --json")
    parser.add_argument(
        "--merge",
        type=Path,
        nargs="*",
        default=[],
        help="other --json files (run side by side) reported with this one",
    )
    args = parser.parse_args()
    for strategy in args.strategies:
        split_strategy(strategy)
    if not lc.GOLD.exists():
        sys.exit(f"gold data not found: {lc.GOLD} (it lies in ../shared/data beside the repo)")
    settings = {"k": args.k, "rounds": args.rounds, "max_epochs": args.max_epochs,
                "train_on": args.train_on, "limit": args.limit}  # fmt: skip
    results = srsly.read_json(args.json) if args.json and args.json.exists() else {}
    if results.setdefault("settings", settings) != settings:
        sys.exit(f"{args.json} holds a run with {results['settings']}: give another --json")
    for other in args.merge:
        found = srsly.read_json(other)
        if found.pop("settings") != settings:
            sys.exit(f"{other} was run with other settings than {args.json}")
        for name, section in found.items():  # strategy by strategy: runs may be split
            for strategy, by_seed in section.items():
                results.setdefault(name, {}).setdefault(strategy, {}).update(by_seed)
    t0 = time.perf_counter()
    if not args.report_only:
        with tempfile.TemporaryDirectory() as tmp:
            args.work = args.work or Path(tmp, "work")
            # a limited file's predictions must not be cached as the whole file's
            cache = Path(tmp) if args.limit or not args.predictions else args.predictions
            run(args, cache, results)
    text = table(results, settings)
    print(text)
    print(f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    if args.markdown:
        args.markdown.write_text(text)
    if args.plot:
        plot(results, settings, args.plot)
    if args.figures_json:
        srsly.write_json(args.figures_json, without_texts(results))


if __name__ == "__main__":
    main()
