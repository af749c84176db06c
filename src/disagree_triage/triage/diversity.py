"""Diversity in a batch: spread the top of a ranked queue so near-duplicates do not fill it.

Uncertainty and disagreement both rank the same mistake on the same words high every time it
occurs (on BTC, 599 of 1,730 gold spans are a lone "@"); an annotator answering the top 50
then corrects one mistake ten times. `diff --diversify K --vectors MODEL` keeps the ranking's
candidates but chooses the first K of them by greedy max-min distance (farthest-first
traversal, Gonzalez 1985) over the pipeline's document vectors (the mean of its word vectors):

    >>> import numpy
    >>> spread_order(numpy.array([[1.0, 0.0], [1.0, 0.01], [0.0, 1.0]]), k=2)
    [0, 2, 1]

The top-ranked example comes first; each next one is, among the top `POOL_FACTOR` × K of the
ranking, the one farthest (cosine) from everything chosen so far, ties to the higher-ranked.
The rest of the queue follows in rank order: nothing is dropped, only the order changes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from ..core.errors import DisagreeError

if TYPE_CHECKING:
    import numpy
    from spacy.language import Language

POOL_FACTOR = 3  # the top K are chosen among the top 3 K: spread, but still near the top
T = TypeVar("T")


def spread_order(vectors: numpy.ndarray, k: int, pool: int | None = None) -> list[int]:
    """The rows 0..n-1 of `vectors` (one per example, in rank order) reordered: the first `k`
    by greedy max-min cosine distance among the first `pool` rows (POOL_FACTOR × k by
    default), then every other row in rank order. A zero vector (no known word) is as far
    from every other as an orthogonal one."""
    import numpy

    n = len(vectors)
    pool = min(n, POOL_FACTOR * k if pool is None else pool)
    k = min(k, pool)
    if k <= 1:
        return list(range(n))
    candidates = numpy.asarray(vectors[:pool], dtype="float64")
    norms = numpy.linalg.norm(candidates, axis=1, keepdims=True)
    unit = numpy.divide(candidates, norms, out=numpy.zeros_like(candidates), where=norms > 0)
    chosen = [0]
    nearest = 1.0 - unit @ unit[0]  # each candidate's distance to the nearest chosen one
    nearest[0] = -1.0
    for _ in range(k - 1):
        best = int(numpy.argmax(nearest))  # the first of equals: the higher-ranked
        chosen.append(best)
        nearest = numpy.minimum(nearest, 1.0 - unit @ unit[best])
        nearest[chosen] = -1.0
    taken = set(chosen)
    return chosen + [i for i in range(n) if i not in taken]


def document_vectors(texts: Sequence[str], model: str | Path) -> numpy.ndarray:
    """One row per text: the mean word vector under `model`'s tokenizer and static vectors
    (`doc.vector`); no component runs."""
    import numpy

    nlp = _vector_pipeline(str(model))
    width = nlp.vocab.vectors.shape[1]
    rows = [numpy.asarray(nlp.make_doc(text).vector) for text in texts]
    return numpy.vstack(rows) if rows else numpy.zeros((0, width), dtype="float32")


def spread(ranked: Sequence[T], text_of: Callable[[T], str], k: int, model: str | Path) -> list[T]:
    """`ranked` (best first) with its first `k` spread by `spread_order` over `model`'s
    document vectors of the top POOL_FACTOR × k; the same items, only reordered."""
    pool = list(ranked[: POOL_FACTOR * k])
    order = spread_order(document_vectors([text_of(item) for item in pool], model), k)
    return [pool[i] for i in order] + list(ranked[len(pool) :])


@lru_cache(maxsize=2)  # --split-by-model spreads several queues with the same pipeline
def _vector_pipeline(model: str) -> Language:
    import spacy

    try:
        nlp = spacy.load(model)
    except OSError as err:
        raise DisagreeError(f"--vectors {model}: cannot load this spaCy pipeline ({err})") from None
    if nlp.vocab.vectors.shape[0] == 0:
        raise DisagreeError(
            f"--vectors {model}: the pipeline has no word vectors; give one that has "
            "(en_core_web_md, en_core_web_lg, or your own with vectors)"
        )
    return nlp
