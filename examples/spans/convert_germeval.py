"""Convert GermEval 2014 NER (CC BY 4.0; two levels of nested entities) into Prodigy
`spans_manual` answers, and keep a small sample: the sentences of the dev file, in file order,
that hold two overlapping spans (an entity nested in another), and a few with spans but no
overlap.

    cd examples/spans && python convert_germeval.py NER-de-dev.tsv germeval2014-nested.jsonl

The TSV is one token a line (`index`, `token`, outer BIO tag, embedded BIO tag), a `#` line with
the sentence's source before each sentence. The text is the tokens joined by single spaces (the
corpus keeps no whitespace); a span is kept as the corpus labels it (LOC, ORGpart, ...), outer
and embedded alike. Tokens are spaCy's German tokeniser's (`spacy.blank("de")`), what a German
pipeline's `predict --spans` writes; a sentence with a span that does not fall on its tokens is
left out, so every span has its `token_start` and `token_end`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import spacy

OVERLAPPING = 250  # sentences with at least one overlapping pair
PLAIN = 50  # sentences with spans, none overlapping
SOURCE = "GermEval 2014 NER, NER-de-dev.tsv"


def sentences(path: Path) -> Iterator[tuple[str, list[list[str]]]]:
    """(source of the sentence, its token lines) for each sentence of the TSV."""
    source, rows = "", []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#\t"):
            source = line.split("\t")[1]
        elif line.strip():
            rows.append(line.split("\t"))
        elif rows:
            yield source, rows
            rows = []
    if rows:
        yield source, rows


def bio_spans(tags: list[str], starts: list[int], ends: list[int]) -> list[tuple[int, int, str]]:
    """Character spans of one BIO column (an I- after O or another label starts a span)."""
    spans: list[tuple[int, int, str]] = []
    for i, tag in enumerate(tags):
        if tag == "O":
            continue
        prefix, label = tag.split("-", 1)
        if prefix == "I" and spans and spans[-1][2] == label and tags[i - 1] != "O":
            spans[-1] = (spans[-1][0], ends[i], label)
        else:
            spans.append((starts[i], ends[i], label))
    return spans


def overlaps(spans: list[tuple[int, int, str]]) -> bool:
    return any(a[0] < b[1] and b[0] < a[1] for i, a in enumerate(spans) for b in spans[i + 1 :])


def record(nlp: spacy.language.Language, n: int, source: str, rows: list[list[str]]) -> dict | None:
    """The `spans_manual` answer of one sentence; None where a span is not on spaCy's tokens."""
    words = [row[1] for row in rows]
    starts = [sum(len(w) + 1 for w in words[:i]) for i in range(len(words))]
    ends = [s + len(w) for s, w in zip(starts, words, strict=True)]
    text = " ".join(words)
    keys = sorted(set(bio_spans([r[2] for r in rows], starts, ends))
                  | set(bio_spans([r[3] for r in rows], starts, ends)))  # fmt: skip
    doc = nlp.make_doc(text)
    spans = []
    for start, end, label in keys:
        span = doc.char_span(start, end)
        if span is None:
            return None
        spans.append({"start": start, "end": end, "text": text[start:end], "label": label,
                      "token_start": span.start, "token_end": span.end - 1})  # fmt: skip
    tokens = [{"text": t.text, "start": t.idx, "end": t.idx + len(t), "id": t.i,
               "ws": bool(t.whitespace_)} for t in doc]  # fmt: skip
    meta = {"source": source, "corpus": SOURCE, "sentence": n}
    return {"text": text, "tokens": tokens, "spans": spans, "_view_id": "spans_manual",
            "answer": "accept", "meta": meta}  # fmt: skip


def sample(path: Path) -> list[dict]:
    nlp = spacy.blank("de")
    kept, counts = [], {True: 0, False: 0}
    for n, (source, rows) in enumerate(sentences(path), start=1):
        line = record(nlp, n, source, rows)
        if line is None or not line["spans"]:
            continue
        nested = overlaps([(s["start"], s["end"], s["label"]) for s in line["spans"]])
        if counts[nested] < (OVERLAPPING if nested else PLAIN):
            counts[nested] += 1
            kept.append(line)
        if counts[True] == OVERLAPPING and counts[False] == PLAIN:
            break
    return kept


def main(tsv: str, out: str) -> None:
    lines = sample(Path(tsv))
    Path(out).write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines),
                         encoding="utf-8")  # fmt: skip
    print(f"{len(lines)} sentences written to {out}")


if __name__ == "__main__":
    main(*sys.argv[1:])
