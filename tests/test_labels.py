import pytest

from disagree_triage import LabelMap
from disagree_triage.core.errors import DisagreeError


def test_parse_renames_keeps_and_drops():
    m = LabelMap.parse("ORG:ORGANISATION,ORGANISATION,PERSON,DATE")
    assert m("ORG") == "ORGANISATION"
    assert m("ORGANISATION") == "ORGANISATION"
    assert m("PERSON") == "PERSON"
    assert m("GPE") is None
    assert m.targets == {"ORGANISATION", "PERSON", "DATE"}


def test_several_sources_one_target():
    m = LabelMap.parse("GPE:LOCATION, LOC:LOCATION")
    assert m("GPE") == m("LOC") == "LOCATION"
    assert m.sources == {"GPE", "LOC"}


def test_no_map_keeps_everything():
    m = LabelMap.parse(None)
    assert m("WORK_OF_ART") == "WORK_OF_ART"
    assert m.unknown_sources(["ORG"]) == []


@pytest.mark.parametrize(
    "spec, words",
    [
        ("ORG:", "no target"),
        (":X", "no source"),
        ("A:B,A:C", "mapped twice"),
        ("A,,B", "empty entry"),
        ("A:B:C", "more than one"),
        ("A,A:B", "mapped twice"),
        ("A:B?", "write it before the ':' (A?:B)"),
        ("?", "no source"),
    ],
)
def test_malformed_maps_are_clear_errors(spec, words):
    with pytest.raises(DisagreeError) as err:
        LabelMap.parse(spec)
    message = str(err.value)
    assert words in message and spec in message and "\n" not in message


def test_repeating_an_identical_entry_is_harmless():
    assert LabelMap.parse("ORG:X,ORG:X")("ORG") == "X"


def test_unknown_sources_lists_labels_the_model_cannot_produce():
    m = LabelMap.parse("ORG:ORGANISATION,ORGANISATION,PERSON")
    assert m.unknown_sources({"ORG", "PERSON", "GPE"}) == ["ORGANISATION"]


def test_a_trailing_question_mark_makes_a_source_optional():
    m = LabelMap.parse("ORG?:ORGANISATION, FAC ?,PERSON")
    assert m.optional == {"ORG", "FAC"}
    assert m("ORG") == "ORGANISATION" and m("FAC") == "FAC"
    assert m.sources == {"ORG", "FAC", "PERSON"}
    m.check_sources(["PERSON", "GPE"])  # ORG and FAC may be missing
    with pytest.raises(DisagreeError, match=r"PERSON, which .* produces\. It produces: ORG\."):
        m.check_sources(["ORG"], "--ner")


def test_str_round_trips():
    spec = "ORG?:ORGANISATION,PERSON,GPE:LOCATION,FAC?"
    assert str(LabelMap.parse(spec)) == spec
    assert LabelMap.parse(str(LabelMap.parse(spec))) == LabelMap.parse(spec)
    spec = "ORG:ORGANISATION,PERSON,GPE:LOCATION"
    assert str(LabelMap.parse(spec)) == spec
    assert LabelMap.parse(str(LabelMap.parse(spec))) == LabelMap.parse(spec)
