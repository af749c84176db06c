"""Prodigy's `_input_hash` / `_task_hash`, computed the same way for every file we write.

Scheme (stable across versions, documented in the README):

- `_input_hash` = MurmurHash3 (32-bit, seed 0, signed) of the canonical JSON
  `{"text": TEXT}` (keys sorted, no ASCII escaping, compact separators). The same text always gets
  the same input hash, whatever its `meta` — so Prodigy's `review` groups every model's version
  of an example together, and `diff` joins files on it.
- `_task_hash` = MurmurHash3 of `"<input_hash>|"` + canonical JSON of the answer's content: the
  spans as sorted `[start, end, label]` triples (NER) or the sorted accepted option ids (choice).
  Two models that found exactly the same spans produce the same task hash, which is how Prodigy
  counts them as one version; any difference gives a different hash.

Prodigy's `db-in` keeps hashes that a task already carries, so these survive the import.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import orjson
from murmurhash import hash as _murmur


def _canonical(value: Any) -> str:
    """Sorted keys, compact separators, no ASCII escaping.

    orjson writes exactly these bytes (checked for every code point) and is several times faster
    than json.dumps; json.dumps stays for what orjson refuses (lone surrogates).
    """
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode("utf-8")
    except TypeError:
        return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def input_hash(text: str) -> int:
    """The signed 32-bit hash that identifies an input text.

    >>> input_hash("Apple hires Tim.") == input_hash("Apple hires Tim.")
    True
    """
    return int(_murmur(_canonical({"text": text})))


def task_hash(
    input_hash_value: int,
    *,
    spans: Iterable[tuple[int, int, str]] = (),
    accept: Iterable[str] = (),
) -> int:
    """The signed 32-bit hash of one answer to an input: changes whenever the spans do."""
    content = {
        "spans": sorted([int(s), int(e), str(label)] for s, e, label in spans),
        "accept": sorted(str(a) for a in accept),
    }
    return int(_murmur(f"{input_hash_value}|" + _canonical(content)))
