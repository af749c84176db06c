"""Which model is likely wrong: the target scorers and the evidence model behind them, against
the arithmetic of their docstrings done by hand, and the contract every target scorer keeps.

Files, the command line, calibration through diff and evaluate are in test_triage_files.py;
real beam scores of en_core_web_md in test_triage_beam.py.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from disagree_triage.triage.differences import find_differences
from disagree_triage.triage.evidence import Evidence, Reliability, Version, blame
from disagree_triage.triage.scorers.target import (
    all_target_scorers,
    error_probability,
    outvoted,
    uncertainty,
)
from disagree_triage.triage.scoring import unsure
from evidence_by_hand import by_hand, sigmoid

FOUND = math.log(8 / 3)  # logit r of a found candidate without beam scores: 0.8 / 0.3
MISSED = math.log(2 / 7)  # of a missed one: 0.2 / 0.7
UNWEIGHED = math.log(1 / 19)  # of a candidate a model's beam did not weigh: q = 0, read as 0.05
TEXT = "Meta hired Tim Cook."
META, TIM_COOK = (0, 4), (11, 19)
META_ORG, META_PERSON, TIM_COOK_PERSON = (*META, "ORG"), (*META, "PERSON"), (*TIM_COOK, "PERSON")
DEFAULT = Reliability()


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def beam(q: float) -> float:
    """logit r of a candidate a model's beam gives probability q (a span it found or a near
    miss): q itself, read within [0.05, 0.95]."""
    return logit(min(max(q, 0.05), 0.95))


# md is unsure of its ORG on "Meta" (0.6) and weighed PERSON (0.35); the LLM says PERSON.
MD = Version(
    frozenset({META_ORG, TIM_COOK_PERSON}),
    {META_ORG: 0.6, TIM_COOK_PERSON: 0.97, META_PERSON: 0.35},
    "md",
)
LLM = Version(frozenset({META_PERSON, TIM_COOK_PERSON}), None, "llm")
LLM_TIM = Version(frozenset({TIM_COOK_PERSON}), None, "llm")


def test_error_probability_by_hand():
    # P(true) per candidate from md's beam probability of it and the LLM's vote.
    meta_org = sigmoid(beam(0.6) + MISSED)  # odds 3/2 · 2/7 = 3/7
    meta_person = sigmoid(beam(0.35) + FOUND)  # md's near miss: odds 7/13 · 8/3 = 56/39
    tim_cook = sigmoid(beam(0.97) + FOUND)  # 0.97 read as 0.95: odds 19 · 8/3 = 152/3
    assert (meta_org, meta_person, tim_cook) == pytest.approx((3 / 10, 56 / 95, 152 / 155))
    md_wrong = 1 - meta_org * (1 - meta_person) * tim_cook
    llm_wrong = 1 - (1 - meta_org) * meta_person * tim_cook
    assert error_probability([MD, LLM], 0, DEFAULT) == pytest.approx(md_wrong)
    assert error_probability([MD, LLM], 1, DEFAULT) == pytest.approx(llm_wrong)
    assert (round(md_wrong, 3), round(llm_wrong, 3)) == (0.879, 0.595)
    errors = Evidence([MD, LLM], DEFAULT).model_errors()
    assert errors == pytest.approx([md_wrong, llm_wrong])
    # md's near miss is its say: surer of PERSON (0.9: odds 9 · 8/3 = 24), md more likely wrong
    surer = Version(MD.spans, {**(MD.beam or {}), META_PERSON: 0.9}, "md")
    surer_wrong = 1 - meta_org * (1 - 24 / 25) * tim_cook
    assert error_probability([surer, LLM], 0, DEFAULT) == pytest.approx(surer_wrong)
    assert surer_wrong > md_wrong


def test_uncertainty_by_hand_reads_the_targets_own_beam_only():
    # md's spans at 0.6 and 0.97, its near miss at 0.35
    assert uncertainty([MD, LLM], 0, DEFAULT) == pytest.approx(1 - 0.6 * 0.97 * (1 - 0.35))
    # The LLM's votes do not move it: the same with an LLM that found nothing.
    nothing = Version(frozenset(), None, "llm")
    assert uncertainty([MD, nothing], 0, DEFAULT) == uncertainty([MD, LLM], 0, DEFAULT)
    assert uncertainty([MD, LLM], 1, DEFAULT) == 0.0  # no beam (diff refuses it as the target)


def test_outvoted_by_hand_with_three_models():
    sm = Version(frozenset({META_ORG, TIM_COOK_PERSON}), None, "sm")
    versions = [MD, LLM, sm]
    # md judged by the LLM and sm alone: they split on "Meta", agree on Tim Cook.
    meta_org = sigmoid(MISSED + FOUND)  # the LLM missed it, sm found it: 16/37
    meta_person = sigmoid(FOUND + MISSED)
    tim_cook = sigmoid(FOUND + FOUND)  # 64/73
    expected = 1 - meta_org * (1 - meta_person) * tim_cook
    assert outvoted(versions, 0, DEFAULT) == pytest.approx(expected)
    assert expected == pytest.approx(1 - 16 / 37 * 21 / 37 * 64 / 73)
    # the LLM judged by md (with its beam) and sm
    meta_org = sigmoid(beam(0.6) + FOUND)  # odds 3/2 · 8/3 = 4
    meta_person = sigmoid(beam(0.35) + MISSED)  # md's near miss: odds 7/13 · 2/7 = 2/13
    tim_cook = sigmoid(beam(0.97) + FOUND)  # 152/155
    expected = 1 - (1 - meta_org) * meta_person * tim_cook
    assert outvoted(versions, 1, DEFAULT) == pytest.approx(expected)
    assert expected == pytest.approx(1 - 1 / 5 * 2 / 15 * 152 / 155)


def test_outvoted_with_two_models_counts_what_only_the_target_found():
    target = Version(frozenset({META_ORG}), None, "t")
    contradicted = outvoted([target, Version(frozenset(), None, "other")], 0, DEFAULT)
    confirmed = outvoted([target, Version(frozenset({META_ORG}), None, "other")], 0, DEFAULT)
    assert confirmed == pytest.approx(1 - sigmoid(FOUND))  # 3/11
    assert contradicted == pytest.approx(1 - sigmoid(MISSED))  # 7/9: the other did not see it
    assert contradicted > confirmed
    # the other with a beam that did not weigh it (q = 0): 1 − 1/20
    unweighed = Version(frozenset(), {META_PERSON: 0.5}, "other")
    # right on its ORG if true (1/20); right on the other's near miss (0.5) if false
    assert outvoted([target, unweighed], 0, DEFAULT) == pytest.approx(
        1 - sigmoid(UNWEIGHED) * (1 - 0.5)
    )
    assert sigmoid(UNWEIGHED) == pytest.approx(1 / 20)


def test_blame_names_the_model_and_says_why():
    evidence = Evidence([MD, LLM], DEFAULT)
    (item,) = blame(evidence, TEXT)  # one difference: the label of "Meta"
    meta_org = sigmoid(beam(0.6) + MISSED)  # 3/10
    meta_person = sigmoid(beam(0.35) + FOUND)  # 56/95
    md_wrong = 1 - meta_org * (1 - meta_person)  # 833/950
    llm_wrong = 1 - (1 - meta_org) * meta_person  # 558/950
    assert item == {
        "at": "Meta",
        "conflict": "label conflict",
        "likely_wrong": ["md"],
        "probability": round(md_wrong, 3),
        "errors": {"md": round(md_wrong, 3), "llm": round(llm_wrong, 3)},
        "why": "md: ORG 'Meta' at 0.60; llm: PERSON 'Meta'",
    }
    assert (md_wrong, llm_wrong) == pytest.approx((833 / 950, 558 / 950))
    assert (item["probability"], item["errors"]["llm"]) == (0.877, 0.587)


def test_an_even_contradiction_blames_both():
    md, llm = (
        Version(frozenset({META_ORG}), None, "md"),
        Version(frozenset({META_PERSON}), None, "llm"),
    )
    (item,) = blame(Evidence([md, llm], DEFAULT), TEXT)
    assert item["likely_wrong"] == ["md", "llm"]
    assert item["probability"] == round(1 - 16 / 37 * 21 / 37, 3)


def test_a_near_miss_of_another_model_joins_the_difference_it_overlaps():
    """md found nothing on "Tim Cook" but weighed "Cook"; the LLM found "Tim Cook"."""
    cook = (15, 19, "PERSON")
    md = Version(frozenset(), {cook: 0.4}, "md")
    (item,) = blame(Evidence([md, LLM_TIM], DEFAULT), TEXT)
    tim_cook = sigmoid(UNWEIGHED + FOUND)  # md's beam did not weigh it: odds 1/19 · 8/3
    cook_true = sigmoid(beam(0.4) + MISSED)  # md's near miss: odds 2/3 · 2/7 = 4/21
    assert (tim_cook, cook_true) == pytest.approx((8 / 65, 4 / 25))
    assert item["errors"]["md"] == round(1 - (1 - tim_cook) * (1 - cook_true), 3)
    assert item["errors"]["llm"] == round(1 - tim_cook * (1 - cook_true), 3)
    assert item["likely_wrong"] == ["llm"] and item["why"] == "md: nothing; llm: PERSON 'Tim Cook'"


# --- Reliability.fit: counts shrunk towards the default ----------------------------------------


def observations(times: int = 1) -> list:
    """Five examples of one candidate each: a finds all five, b the first two; gold holds the
    first three."""
    found = []
    for _ in range(times):
        for i in range(5):
            candidate = (i, i + 1, "ORG")
            a = Version(frozenset({candidate}), None, "a")
            b = Version(frozenset({candidate}) if i < 2 else frozenset(), None, "b")
            found.append(([a, b], frozenset({candidate}) if i < 3 else frozenset()))
    return found


def test_fit_shrinks_counts_towards_the_default_by_hand():
    fitted = Reliability.fit(observations(), ["a", "b"])
    assert (fitted.examples, fitted.candidates) == (5, 5)
    prior = (3 + 1) / (5 + 2)  # 3 true of 5 candidates, Laplace
    assert fitted.prior(None) == pytest.approx(prior)
    # the default's likelihood ratio on the counted prior: odds 4/3 · 8/3, and 4/3 · 2/7
    found_default, missed_default = 32 / 41, 8 / 29
    assert sigmoid(logit(prior) + FOUND) == pytest.approx(found_default)
    rates = fitted.rates
    a_found = rates[("a", (True, None), None)]
    b_found = rates[("b", (True, None), None)]
    b_missed = rates[("b", (False, None), None)]
    assert a_found == pytest.approx((3 + 4 * found_default) / (5 + 4))
    assert b_found == pytest.approx((2 + 4 * found_default) / (2 + 4))
    assert b_missed == pytest.approx((1 + 4 * missed_default) / (3 + 4))
    # each between its count and the default
    assert 3 / 5 < a_found < found_default
    assert found_default < b_found < 2 / 2
    assert missed_default < b_missed < 1 / 3
    # a label's rate is shrunk towards all labels' evidence, on the label's own prior
    org_prior = (3 + 4 * prior) / (5 + 4)
    assert fitted.prior("ORG") == pytest.approx(org_prior)
    towards = sigmoid(logit(org_prior) + logit(a_found) - logit(prior))
    assert rates[("a", (True, None), "ORG")] == pytest.approx((3 + 4 * towards) / 9)
    assert fitted.rate("a", (True, None), "ORG") == rates[("a", (True, None), "ORG")]
    assert fitted.describe() == [
        "a: what it finds is right 68%, what it misses is a true entity –",
        "b: what it finds is right 85%, what it misses is a true entity 30%",
    ]


def test_fit_on_more_examples_moves_closer_to_the_counts():
    few = Reliability.fit(observations(1), ["a", "b"]).rates[("a", (True, None), None)]
    many = Reliability.fit(observations(20), ["a", "b"]).rates[("a", (True, None), None)]
    assert abs(many - 3 / 5) < abs(few - 3 / 5) and abs(many - 3 / 5) < 0.01


def test_fit_counts_beam_probabilities_by_confidence_bin():
    candidate = (0, 4, "ORG")
    seen = [
        ([Version(frozenset({candidate}), {candidate: 0.95}, "md")], frozenset({candidate})),
        ([Version(frozenset({candidate}), {candidate: 0.97}, "md")], frozenset()),
        ([Version(frozenset({candidate}), {candidate: 0.3}, "md")], frozenset()),
    ]
    rates = Reliability.fit(seen, ["md"]).rates
    # bins: [0, .05), [.05, .5), [.5, .9), [.9, .99), [.99, 1]: 0.95 and 0.97 share bin 3
    assert set(rates) == {
        ("md", (True, 3), None),
        ("md", (True, 3), "ORG"),
        ("md", (True, 1), None),
        ("md", (True, 1), "ORG"),
    }
    prior = (1 + 1) / (3 + 2)
    # the default's evidence in bin 3: the mean of logit r at 0.95 and at 0.97 (read as 0.95)
    evidence = (beam(0.95) + beam(0.97)) / 2
    assert evidence == pytest.approx(math.log(19))
    assert rates[("md", (True, 3), None)] == pytest.approx(
        (1 + 4 * sigmoid(logit(prior) + evidence)) / (2 + 4)
    )
    assert rates[("md", (True, 1), None)] == pytest.approx(
        (0 + 4 * sigmoid(logit(prior) + math.log(3 / 7))) / (1 + 4)  # logit 0.3
    )


# --- the contract of every target scorer (property tests) ---------------------------------------

LABELS = ["ORG", "PERSON", "DATE"]
LONG = "Meta hired Tim Cook and Ann Lee in Paris on Monday, said the report of Reuters."


@st.composite
def entity_sets(draw):
    """Non-overlapping spans within one model, as NER produces them."""
    cuts = sorted(draw(st.sets(st.integers(0, 60), max_size=10)))
    pairs = list(zip(cuts[::2], cuts[1::2], strict=False))
    return frozenset((s, e, draw(st.sampled_from(LABELS))) for s, e in pairs if s < e)


@st.composite
def overlapping_sets(draw):
    """Spans as spancat writes them: nested, crossing, one span with several labels."""
    keys = draw(st.sets(st.tuples(st.integers(0, 40), st.integers(1, 10), st.sampled_from(LABELS)),
                        max_size=8))  # fmt: skip
    return frozenset((s, s + length, label) for s, length, label in keys)


def span_sets():
    """A model's spans: entities (no overlap) or spans (overlapping, spancat's scores being
    per span like a beam's)."""
    return st.one_of(entity_sets(), overlapping_sets())


probabilities = st.floats(0.0, 1.0)


@st.composite
def model_versions(draw, min_models: int = 2, max_models: int = 4):
    """Each model with hard votes or beam scores (its spans, now and then one the beam does not
    cover, and near misses of at least 0.05)."""
    found = []
    for i in range(draw(st.integers(min_models, max_models))):
        spans = draw(span_sets())
        beam = None
        if draw(st.booleans()):
            beam = {s: draw(probabilities) for s in sorted(spans) if draw(st.integers(0, 5))}
            for s in sorted(draw(span_sets()) - spans):
                beam[s] = draw(st.floats(0.05, 1.0))
        found.append(Version(spans, beam, f"m{i}"))
    return found


@settings(deadline=None)
@given(model_versions(), st.data())
def test_every_target_scorer_follows_the_documented_formula(versions, data):
    target = data.draw(st.integers(0, len(versions) - 1))
    for name in ("error_probability", "uncertainty", "outvoted"):
        value = all_target_scorers()[name](versions, target, DEFAULT)
        assert value == pytest.approx(by_hand(name, versions, target), abs=1e-9), name


@settings(deadline=None)
@given(model_versions(), st.data())
def test_every_target_scorer_is_in_0_1_and_ignores_the_order_of_the_others(versions, data):
    target = data.draw(st.integers(0, len(versions) - 1))
    others = data.draw(st.permutations([v for i, v in enumerate(versions) if i != target]))
    at = data.draw(st.integers(0, len(others)))
    moved = [*others[:at], versions[target], *others[at:]]
    for name, scorer in all_target_scorers().items():
        value = scorer(versions, target, DEFAULT)
        assert 0.0 <= value <= 1.0, name
        assert scorer(moved, at, DEFAULT) == pytest.approx(value, abs=1e-12), name


@settings(deadline=None)
@given(
    span_sets().filter(bool),
    span_sets(),
    st.lists(st.floats(0.95, 1.0), min_size=5, max_size=5),
    st.integers(0, 3),
)
def test_agreeing_with_a_confident_majority_scores_low(mine, theirs, confidence, at):
    """Three hard-vote models found exactly the target's spans, which its beam gives at least
    0.95: lower than when the same three found something else."""
    assume(theirs != mine)
    target = Version(mine, dict(zip(sorted(mine), confidence, strict=False)), "target")

    def with_others(spans):
        others = [Version(spans, None, f"other{i}") for i in range(3)]
        return [*others[:at], target, *others[at:]]

    agree, outvoted_by_all = with_others(mine), with_others(theirs)
    for name, scorer in all_target_scorers().items():
        low, high = scorer(agree, at, DEFAULT), scorer(outvoted_by_all, at, DEFAULT)
        if name == "uncertainty":  # the target's own beam alone: the others do not count
            assert low == high
        else:
            assert low < high, name
            # at most what three hard votes alone leave (their P(true) is 512/539 a span)
            assert low <= 1 - sigmoid(3 * FOUND) ** len(mine) + 1e-12, name


@settings(deadline=None)
@given(span_sets(), span_sets(), st.integers(2, 4), st.booleans(), st.data())
def test_blame_names_the_lone_dissenter(majority, dissent, n_others, scored, data):
    """2 to 4 models found the same spans (hard votes, or beam scores of at least 0.95); the
    one model that found something else is the likely wrong one on every difference."""
    assume(majority != dissent)
    others = [
        Version(
            majority,
            {s: data.draw(st.floats(0.95, 1.0)) for s in sorted(majority)} if scored else None,
            f"m{i}",
        )
        for i in range(n_others)
    ]
    at = data.draw(st.integers(0, n_others))
    versions = [*others[:at], Version(dissent, None, "dissenter"), *others[at:]]
    evidence = Evidence(versions, DEFAULT)
    found = blame(evidence, LONG)
    assert len(found) == len(find_differences([v.spans for v in versions])) > 0
    for item in found:
        assert item["likely_wrong"] == ["dissenter"], item
        assert item["probability"] == max(item["errors"].values())
    errors = evidence.model_errors()
    assert all(errors[at] > e for i, e in enumerate(errors) if i != at)


# --- safe agreements: the rule of --min-confidence -------------------------------------------


def said(kind: str, version: Version, candidate: tuple, text: str) -> tuple[str, str]:
    """A reason of `unsure`, in words: e.g. ("md", "near miss: md: PERSON 'Meta' at 0.15")."""
    start, end, label = candidate
    p = (version.beam or {})[candidate]
    return (version.model, f"{kind}: {version.model}: {label} {text[start:end]!r} at {p:.2f}")


@settings(deadline=None)
@given(model_versions(), st.floats(0.0, 1.0))
def test_an_agreement_is_held_back_exactly_when_the_rule_says(versions, min_confidence):
    for v in versions:  # on the threshold itself: see the test below
        for p in (v.beam or {}).values():
            assume(abs(p - min_confidence) > 1e-9 and abs(p - (1 - min_confidence)) > 1e-9)
    expected = []
    for v in versions:
        for s, p in (v.beam or {}).items():
            if s in v.spans and p < min_confidence:
                expected.append(said("low confidence", v, s, LONG))
            if s not in v.spans and p > 1 - min_confidence:
                expected.append(said("near miss", v, s, LONG))
    reasons = unsure(versions, LONG, min_confidence)
    assert sorted(reasons) == sorted(expected)
    assert (reasons == []) == (not expected)


def test_held_back_reasons_in_words():
    md = Version(frozenset({META_ORG}), {META_ORG: 0.85}, "md")
    assert unsure([md, LLM], TEXT, 0.9) == [("md", "low confidence: md: ORG 'Meta' at 0.85")]
    assert unsure([md, LLM], TEXT, 0.8) == []
    md = Version(frozenset({META_ORG}), {META_ORG: 0.99, META_PERSON: 0.15}, "md")
    assert unsure([md], TEXT, 0.9) == [("md", "near miss: md: PERSON 'Meta' at 0.15")]
    assert unsure([md], TEXT, 0.8) == []
    assert unsure([LLM, LLM_TIM], TEXT, 1.0) == []  # no model with scores: nothing to doubt
    # every unsure model, each with its reasons
    sm = Version(frozenset({META_ORG}), {META_ORG: 0.5, META_PERSON: 0.45}, "sm")
    assert unsure([md, LLM, sm], TEXT, 0.9) == [
        ("md", "near miss: md: PERSON 'Meta' at 0.15"),
        ("sm", "low confidence: sm: ORG 'Meta' at 0.50"),
        ("sm", "near miss: sm: PERSON 'Meta' at 0.45"),
    ]


@pytest.mark.parametrize("min_confidence", [0.9, 0.8, 0.7, 0.6, 0.95, 0.99, 0.3])
def test_a_near_miss_exactly_at_one_minus_min_confidence_is_not_above_it(min_confidence):
    """On the threshold itself an agreement is safe: a span of exactly min_confidence is not
    below it, a near miss of exactly 1 − min_confidence (predict rounds to 6 digits) not above
    it, though 1 − 0.9 is 0.0999… in floating point; one step of 1e-6 beyond either is held."""
    edge = round(1 - min_confidence, 6)
    md = Version(frozenset({META_ORG}), {META_ORG: min_confidence, META_PERSON: edge}, "md")
    assert unsure([md], TEXT, min_confidence) == []
    md = Version(frozenset({META_ORG}), {META_ORG: min_confidence, META_PERSON: edge + 1e-6}, "md")
    assert [model for model, _ in unsure([md], TEXT, min_confidence)] == ["md"]
    md = Version(frozenset({META_ORG}), {META_ORG: min_confidence - 1e-6, META_PERSON: edge}, "md")
    assert [model for model, _ in unsure([md], TEXT, min_confidence)] == ["md"]
