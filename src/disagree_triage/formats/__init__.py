"""The formats `diff` writes its ranked queue in, one small registered class each:

- `queue` / `review`: Prodigy (prodigy.py, over the format's rules in prodigy/);
- `labelstudio`: Label Studio tasks with one prediction per model, and their labelling config;
- `doccano`: doccano's JSONL, prefilled;
- `argilla`: an Argilla 2.x dataset folder (`rg.Dataset.from_disk`), the prefilled version
  suggested, every model's in the metadata.

    >>> from disagree_triage.formats import get_queue_format
    >>> get_queue_format("labelstudio").suffix
    '.json'

A format of your own: subclass `QueueFormat` and `queue_formats.register("name", func=Cls)`.
"""

from . import argilla, doccano, labelstudio, prodigy  # noqa: F401  (each registers its formats)
from .queue_format import QueueFormat, get_queue_format, queue_formats

__all__ = ["QueueFormat", "get_queue_format", "queue_formats"]
