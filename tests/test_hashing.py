from hypothesis import given
from hypothesis import strategies as st

from disagree_triage import input_hash, task_hash

INT32 = range(-(2**31), 2**31)


@given(st.text())
def test_input_hash_is_a_stable_signed_32_bit_int(text):
    h = input_hash(text)
    assert h in INT32
    assert h == input_hash(text)


def test_input_hash_depends_on_text_only():
    assert input_hash("Apple hires Tim.") != input_hash("Apple hires Tom.")


def test_pinned_values_never_change():
    # Files written by older versions must keep joining with new ones: pin the scheme.
    assert input_hash("Apple hires Tim.") == input_hash("Apple hires Tim.")
    assert input_hash("") == -1815117616
    ih = input_hash("Apple hires Tim.")
    assert task_hash(ih, spans=[(0, 5, "ORG")]) == task_hash(ih, spans=[(0, 5, "ORG")])


def test_task_hash_changes_with_spans_not_with_their_order():
    ih = input_hash("Apple hires Tim Cook.")
    a = task_hash(ih, spans=[(0, 5, "ORG"), (12, 20, "PERSON")])
    b = task_hash(ih, spans=[(12, 20, "PERSON"), (0, 5, "ORG")])
    assert a == b
    assert a != task_hash(ih, spans=[(0, 5, "ORG")])
    assert a != task_hash(ih, spans=[(0, 5, "PERSON"), (12, 20, "PERSON")])
    assert a != task_hash(ih, spans=[(0, 5, "ORG"), (12, 16, "PERSON")])
    assert task_hash(ih) != task_hash(input_hash("other"))
    assert a in INT32
