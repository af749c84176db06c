"""Time a text of the embedded LLM under its JSON grammar: llama.cpp's grammar sampler (every
token of the vocabulary tested at every step) against `GrammarCheck` (the model's best tokens
tested first), in the same process, alternating, on the same prompts.

    python benchmarks/grammar_check.py [--records 20] [--config configs/local-json.cfg]

Prompts are those of the config's task on the first --records texts of
../shared/data/gold/wikigold.jsonl. Each generation starts from the same cached prefix (the
prompt's instructions and examples), as in a real run; the repeated-entity stop is left out
here, so both decode the same number of tokens. Prints seconds a text for each, the ratio,
how many answers are identical (they must all be), and how often GrammarCheck had to mask the
whole vocabulary.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOLD = ROOT.parent / "shared" / "data" / "gold" / "wikigold.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=20)
    parser.add_argument("--config", default=str(ROOT / "configs" / "local-json.cfg"))
    args = parser.parse_args()
    if not GOLD.exists():
        raise SystemExit(f"{GOLD} is missing (../shared/data)")

    from disagree_triage.llm.llamacpp import (
        GrammarCheck,
        LogitsProcessorList,
        grammar_for,
        load_llama,
    )
    from disagree_triage.llm.structured import schema_of
    from disagree_triage.predict.pipeline import load_pipeline

    nlp = load_pipeline(args.config)
    component = nlp.get_pipe("llm")
    model = component._model
    with GOLD.open() as lines:
        texts = [json.loads(line)["text"] for line in itertools.islice(lines, args.records)]
    docs = [nlp.make_doc(text) for text in texts]
    prompts = [p for item in component._task.generate_prompts(docs) for p in item[0]]
    llm = load_llama(model.model_path, model.n_ctx, model.n_threads, model.seed)
    settings = {"temperature": 0.0, "max_tokens": model.max_tokens, "stop": model.stop or None}
    llm.create_completion(str(prompts[0]), max_tokens=1, temperature=0.0)  # the shared prefix
    seconds = {"grammar sampler": 0.0, "GrammarCheck": 0.0}
    same = masked = steps = tokens = 0
    for i, prompt in enumerate(prompts):
        grammar = grammar_for(schema_of(prompt))
        answers = {}
        order = list(seconds) if i % 2 == 0 else list(reversed(seconds))
        for way in order:
            start = time.perf_counter()
            if way == "grammar sampler":
                result = llm.create_completion(str(prompt), grammar=grammar, **settings)
            else:
                check = GrammarCheck(llm, grammar)
                processors = LogitsProcessorList([check])
                result = llm.create_completion(str(prompt), logits_processor=processors, **settings)
                masked, steps = masked + check.masked, steps + check.steps
                check.close()
            seconds[way] += time.perf_counter() - start
            answers[way] = result["choices"][0]["text"]
        tokens += result["usage"]["completion_tokens"]
        same += len(set(answers.values())) == 1
        if len(set(answers.values())) > 1:
            print(f"text {i}: the answers differ:", *answers.values(), sep="\n  ")
    n = len(prompts)
    print(f"{n} texts of {GOLD.name}, {args.config}, load average {os.getloadavg()[0]:.2f}")
    for way, total in seconds.items():
        print(f"  {way:16s} {total / n:6.2f} s a text")
    ratio = seconds["grammar sampler"] / seconds["GrammarCheck"]
    print(f"  GrammarCheck is {ratio:.2f}x as fast; {tokens / n:.0f} answer tokens a text")
    print(f"  identical answers: {same} of {n}; vocabulary masked at {masked} of {steps} steps")


if __name__ == "__main__":
    main()
