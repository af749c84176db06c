"""Prodigy's hashes, one scheme for every line disagree writes (docs/formats.md, "Hash scheme"):

- `_input_hash` = signed 32-bit MurmurHash3 (seed 0) of the canonical JSON `{"text": TEXT}`
  (keys sorted, no ASCII escaping, compact separators): the same text always gets the same
  input hash, whatever its `meta`, so Prodigy's `review` groups every model's version of an
  example and `diff` joins files on it;
- `_task_hash` = MurmurHash3 of `"<input_hash>|"` + canonical JSON of the answer's content:
  `{"accept": [sorted option ids], "spans": [sorted [start, end, label]]}`. Two models that
  found exactly the same spans share a task hash (Prodigy shows them as one version).

Prodigy's `db-in` keeps hashes a task already carries, so these survive the import.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import orjson
from murmurhash import hash as _murmur

from ..core.spans import SpanKey


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
    spans: Iterable[SpanKey] = (),
    accept: Iterable[str] = (),
) -> int:
    """The signed 32-bit hash of one answer to an input: changes whenever the spans do."""
    content = {
        "spans": sorted([int(s), int(e), str(label)] for s, e, label in spans),
        "accept": sorted(str(a) for a in accept),
    }
    return int(_murmur(f"{input_hash_value}|" + _canonical(content)))
