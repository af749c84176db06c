"""The formats `diff` writes its ranked queue in, one small registered class each:

- `queue` / `review`: Prodigy (prodigy.py over prodigy/write.py);
- `labelstudio`: Label Studio tasks with one prediction per model, and their labelling config;
- `doccano`: doccano's JSONL, prefilled.

    >>> from disagree_triage.exports import get_queue_format
    >>> get_queue_format("labelstudio").suffix
    '.json'

A format of your own: subclass `QueueFormat` and `queue_formats.register("name", func=Cls)`.
"""

from . import doccano, labelstudio, prodigy  # noqa: F401  (each registers its formats)
from .base import QueueFormat, get_queue_format, queue_formats

__all__ = ["QueueFormat", "get_queue_format", "queue_formats"]
