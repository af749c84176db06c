"""Each kind of difference on hand-built spans, and properties every scorer must have."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from disagree_triage.core.errors import DisagreeError
from disagree_triage.triage.differences import BOTH, BOUNDARY, LABEL, MISSING, find_differences
from disagree_triage.triage.scorers import get_scorer, scorers

TEXT = "Meta hired Tim Cook on Monday in Paris."
META, TIM_COOK, TIM, MONDAY = (0, 4), (11, 19), (11, 14), (23, 29)


def spans(*items):
    return frozenset((s, e, label) for (s, e), label in items)


def kinds(a, b):
    return [d.conflict for d in find_differences([a, b])]


def test_exact_agreement():
    a = spans((META, "ORG"), (TIM_COOK, "PERSON"))
    assert find_differences([a, a]) == ()
    assert all(fn([a, a]) == 0 for fn in scorers.get_all().values())


def test_label_conflict():
    a, b = spans((META, "ORG")), spans((META, "PERSON"))
    assert kinds(a, b) == [LABEL]
    (d,) = find_differences([a, b])
    assert d.describe(TEXT, ["spacy-md", "llm"]) == (
        "label conflict: spacy-md: ORG 'Meta' | llm: PERSON 'Meta'"
    )
    assert get_scorer("label_conflicts")([a, b]) == 1
    assert get_scorer("boundary_conflicts")([a, b]) == 0
    assert get_scorer("missing_spans")([a, b]) == 0


def test_boundary_conflict():
    a, b = spans((TIM_COOK, "PERSON")), spans((TIM, "PERSON"))
    assert kinds(a, b) == [BOUNDARY]
    assert get_scorer("boundary_conflicts")([a, b]) == 1
    assert get_scorer("label_conflicts")([a, b]) == 0


def test_label_and_boundary_conflict_counts_as_both():
    a, b = spans((TIM_COOK, "PERSON")), spans((TIM, "ORG"))
    assert kinds(a, b) == [BOTH]
    assert get_scorer("boundary_conflicts")([a, b]) == 1
    assert get_scorer("label_conflicts")([a, b]) == 1


def test_span_only_one_model_found():
    a, b = spans((META, "ORG"), (MONDAY, "DATE")), spans((META, "ORG"))
    (d,) = find_differences([a, b])
    assert d.conflict == MISSING and d.missing_models == (1,)
    assert (
        d.describe(TEXT, ["md", "llm"]) == "found by some models only: md: DATE 'Monday' | llm: —"
    )
    assert get_scorer("missing_spans")([a, b]) == 1


def test_several_differences_in_text_order():
    a = spans((META, "ORG"), (TIM_COOK, "PERSON"), (MONDAY, "DATE"))
    b = spans((META, "PERSON"), (TIM, "PERSON"))
    assert kinds(a, b) == [LABEL, BOUNDARY, MISSING]


def test_span_f1_hand_computed():
    a = spans((META, "ORG"), (TIM_COOK, "PERSON"), (MONDAY, "DATE"))
    b = spans((META, "ORG"), (TIM, "PERSON"))
    # one shared span: F1 = 2*1 / (3 + 2) = 0.4
    assert get_scorer("span_f1")([a, b]) == pytest.approx(0.6)
    c = spans((META, "ORG"))
    # pairs: (a,b) 0.6, (a,c) 1 - 2/4 = 0.5, (b,c) 1 - 2/3
    assert get_scorer("span_f1")([a, b, c]) == pytest.approx((0.6 + 0.5 + 1 / 3) / 3)


def test_vote_entropy_hand_computed():
    a = spans((META, "ORG"), (MONDAY, "DATE"))
    b = spans((META, "ORG"))
    c = spans((META, "PERSON"))
    # candidates: META/ORG 2 of 3, MONDAY 1 of 3, META/PERSON 1 of 3
    h = -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3))
    assert get_scorer("vote_entropy")([a, b, c]) == pytest.approx(3 * h)


def test_unknown_scorer_lists_known_ones():
    with pytest.raises(DisagreeError, match="span_f1"):
        get_scorer("nope")


# --- properties ---------------------------------------------------------------------------

LABELS = ["ORG", "PERSON", "DATE"]


@st.composite
def entity_sets(draw):
    """Non-overlapping spans within one model, as NER produces them."""
    cuts = sorted(draw(st.sets(st.integers(0, 60), max_size=10)))
    pairs = list(zip(cuts[::2], cuts[1::2], strict=False))
    return frozenset((s, e, draw(st.sampled_from(LABELS))) for s, e in pairs if s < e)


@st.composite
def overlapping_sets(draw):
    """Spans as spancat writes them: nested, crossing, one span with several labels, within
    one model (a short text, so that they overlap often)."""
    keys = draw(st.sets(st.tuples(st.integers(0, 12), st.integers(1, 6), st.sampled_from(LABELS)),
                        max_size=8))  # fmt: skip
    return frozenset((s, s + length, label) for s, length, label in keys)


def span_sets():
    """A model's spans: entities (no overlap) or spans (overlapping)."""
    return st.one_of(entity_sets(), overlapping_sets())


@st.composite
def models_spans(draw):
    """2 to 4 models' spans that share a part (so that agreed spans overlap disputed ones):
    spans, overlapping, and now and then entities."""
    shared = draw(span_sets())
    return [
        shared - draw(st.sets(st.sampled_from(sorted(shared)))) | draw(span_sets())
        if shared
        else draw(span_sets())
        for _ in range(draw(st.integers(2, 4)))
    ]


@given(span_sets(), st.integers(2, 4))
def test_every_scorer_is_zero_when_all_agree(spans_, n):
    for name, fn in scorers.get_all().items():
        assert fn([spans_] * n) == 0, name


@given(st.one_of(st.lists(span_sets(), min_size=2, max_size=4), models_spans()), st.randoms())
def test_every_scorer_is_symmetric_in_model_order(sets, rnd):
    shuffled = list(sets)
    rnd.shuffle(shuffled)
    for name, fn in scorers.get_all().items():
        assert fn(sets) == pytest.approx(fn(shuffled)), name


@given(span_sets(), span_sets())
def test_span_f1_is_one_when_nothing_is_shared(a, b):
    b = b - a
    if a or b:
        assert get_scorer("span_f1")([a, b]) == 1.0


@given(st.one_of(st.lists(span_sets(), min_size=2, max_size=4), models_spans()))
def test_differences_exist_exactly_when_sets_differ(sets):
    assert bool(find_differences(sets)) == (len(set(sets)) > 1)
    assert (get_scorer("span_f1")(sets) > 0) == (len(set(sets)) > 1)


@given(st.one_of(st.lists(span_sets(), min_size=2, max_size=4), models_spans()))
def test_each_disputed_span_is_in_exactly_one_difference_and_no_agreed_one_is(sets):
    """A difference is judged per (start, end, label): a span every model found is in none,
    one some model lacks is in exactly one, under exactly the models that found it."""
    differences = find_differences(sets)
    agreed = frozenset.intersection(*sets)
    seen = []
    for d in differences:
        for m, spans in enumerate(d.spans):
            assert spans <= sets[m]
            assert d.missing_models.count(m) == (not spans)
        group = frozenset().union(*d.spans)
        assert not group & agreed
        assert all(
            (key in sets[m]) == (key in d.spans[m]) for key in group for m in range(len(sets))
        )
        assert (d.start, d.end) == (min(k[0] for k in group), max(k[1] for k in group))
        seen.extend(group)
    assert sorted(seen) == sorted(frozenset().union(*sets) - agreed)
    assert [d.start for d in differences] == sorted(d.start for d in differences)


@given(overlapping_sets(), st.integers(1, 3))
def test_one_models_own_overlapping_spans_are_never_a_conflict(spans_, n_silent):
    """Spans only one model found, however they overlap each other, are each found by some
    models only: never a label or boundary conflict."""
    sets = [spans_] + [frozenset()] * n_silent
    assert all(d.conflict == MISSING for d in find_differences(sets))
    assert len(find_differences(sets)) == len(spans_)
    assert get_scorer("label_conflicts")(sets) == 0 == get_scorer("boundary_conflicts")(sets)
    assert get_scorer("missing_spans")(sets) == len(spans_)


@given(st.one_of(st.lists(span_sets(), min_size=2, max_size=4), models_spans()))
def test_a_conflict_is_between_spans_of_different_models(sets):
    for d in find_differences(sets):
        if d.conflict != MISSING:
            held = [m for m, spans in enumerate(d.spans) if spans]
            assert len(held) >= 2 and len({d.spans[m] for m in held}) >= 2
