"""doccano: the queue as the JSONL that a doccano project imports, prefilled as `--prefill` says.

Sequence labelling, one line per queued example:

    {"rank": 1, "text": "...", "label": [[0, 5, "ORG"]], "disagreement_score": 0.5,
     "differences": "label conflict: ...", ...every scorer, the input's meta...}

and for text classification `"label": ["COOKING"]`. doccano keeps every key besides `text`
and `label` as the example's metadata, shown beside the text; it creates the labels it finds.

Offsets: doccano's annotator (v-annotator) counts in the browser's UTF-16 code units, unless
the project counts grapheme clusters as one character (off by default). A character beyond
U+FFFF (most emoji) is one code point in Python and two code units there, so every offset after
one is shifted by the number of such characters before it. Import into a project created
without "Count grapheme clusters as one character". tests/test_doccano_server.py checks this in
a real doccano 1.8.4: its server stores offsets as given, its annotator draws these on the
entities' own characters, and code-point offsets shifted.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..compare import SpanKey
from ..kinds import TaskKind
from ..prefill import prefilled_answer
from .base import QueueFormat, flat_fields, input_meta, queue_formats, rank_first

if TYPE_CHECKING:
    from ..scoring import ScoredExample

_RANK_PREFIX = b'{"rank":'
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")  # two UTF-16 code units each


class DoccanoLines(QueueFormat):
    name = "doccano"
    tool_labels = True

    def records(self, scored: ScoredExample) -> list[dict[str, Any]]:
        example = scored.example
        self.check_labels(example)
        text = example.text
        chosen = prefilled_answer(self.prefill, self.scoring.models, example, self.scoring.kind)
        label: list[Any]
        if self.scoring.kind is TaskKind.CHOICE:
            label = [str(category) for category in chosen]
        else:
            keys = [key for key in chosen if isinstance(key, tuple)]
            label = [[start, end, name] for start, end, name in utf16_spans(text, keys)]
        record: dict[str, Any] = {"rank": 0, "text": text, "label": label}
        details = self.scoring.details(scored)
        for key, value in flat_fields(details, input_meta(example)).items():
            record.setdefault(key, value)
        return [record]

    def with_rank(self, line: bytes, rank: int) -> bytes:
        return rank_first(_RANK_PREFIX, line, rank)


def utf16_spans(text: str, spans: Sequence[SpanKey]) -> list[SpanKey]:
    """`spans` (offsets in code points) with offsets in UTF-16 code units, as doccano counts.

    >>> utf16_spans("🎉 Zoë", [(2, 5, "PERSON")])
    [(3, 6, 'PERSON')]
    """
    astral = [match.start() for match in _ASTRAL.finditer(text)]
    if not astral:
        return list(spans)
    return [
        (start + bisect_left(astral, start), end + bisect_left(astral, end), label)
        for start, end, label in spans
    ]


queue_formats.register(DoccanoLines.name, func=DoccanoLines)
