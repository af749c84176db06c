"""Spans as every stage compares them: a `SpanKey` is (start, end, label) in character offsets
(code points, as Python counts), a model's version of a text is the `SpanSet` of its keys.
A category accepted for a whole text is the span (0, len(text), CATEGORY) (prodigy.read).

    >>> key: SpanKey = (0, 5, "ORG")
    >>> key in SpanSet({key})
    True
"""

SpanKey = tuple[int, int, str]
SpanSet = frozenset[SpanKey]
