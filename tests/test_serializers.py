import pytest

from qa.reader.errors import BatchTooLarge
from qa.serializers import AnswerRequestSerializer, request_serializer


def test_defaults_are_those_of_the_v4_pipeline():
    serializer = AnswerRequestSerializer(data={"question": "Who?", "context": "Kit"})
    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data == {
        "question": "Who?",
        "context": "Kit",
        "top_k": 1,
        "max_answer_len": 15,
        "max_question_len": 64,
        "handle_impossible_answer": False,
        "align_to_words": True,
    }  # doc_stride and max_seq_len are derived from the model when absent


def test_unknown_fields_are_refused_by_name():
    serializer = AnswerRequestSerializer(data={"question": "q", "context": "c", "stride": 5})
    assert not serializer.is_valid()
    assert serializer.errors == {"stride": ["Unknown field."]}


def test_a_list_is_a_batch():
    serializer = request_serializer([{"question": "q", "context": "c"}] * 2)
    assert serializer.is_valid(), serializer.errors
    assert len(serializer.validated_data) == 2


def test_text_must_be_a_json_string_whose_offsets_the_client_can_use():
    # DRF would take 1e2 as the text "100.0": answers would index a text the client never sent.
    serializer = AnswerRequestSerializer(data={"question": 42, "context": 1e2})
    assert not serializer.is_valid()
    assert serializer.errors == {
        "question": ["Not a valid string."],
        "context": ["Not a valid string."],
    }


@pytest.mark.parametrize(("sizes", "valid"), [([(2, 3), (1, 4)], True), ([(2, 3), (1, 5)], False)])
def test_a_batch_holds_at_most_qa_max_batch_chars(settings, sizes, valid):
    """Questions and contexts together, across the batch: 10 characters fit, 11 do not."""
    settings.QA_MAX_BATCH_CHARS = 10
    batch = [{"question": "q" * question, "context": "c" * context} for question, context in sizes]
    serializer = request_serializer(batch)
    if valid:
        assert serializer.is_valid(), serializer.errors
        return
    with pytest.raises(BatchTooLarge) as refused:
        serializer.is_valid()
    assert (refused.value.characters, refused.value.limit) == (11, 10)
    assert str(refused.value) == (
        "This batch holds 11 characters of questions and contexts; one call may hold at most 10. "
        "Send it as smaller batches."
    )
