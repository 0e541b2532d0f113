"""Every document the client can send validates against the shipped schema."""

from __future__ import annotations

import itertools

import graphql
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prismatic_usage import queries


@pytest.mark.parametrize("stream", queries.STREAMS, ids=lambda s: s.name)
def test_single_stream_documents_validate(stream: queries.Stream) -> None:
    document = queries.packed_document((stream,))
    assert queries.validation_errors(document) == []
    text = graphql.print_ast(document.document)
    assert f"u0: {stream.root_field}(" in text
    assert "first: $f0" in text and "offset: $o0" in text


def test_every_packed_shape_up_to_three_slots_validates() -> None:
    for size in (2, 3):
        for shape in itertools.combinations_with_replacement(queries.STREAMS, size):
            document = queries.packed_document(shape)
            assert queries.validation_errors(document) == []


@settings(deadline=None, max_examples=25)
@given(st.lists(st.sampled_from(queries.STREAMS), min_size=1, max_size=100))
def test_any_pack_of_up_to_100_slots_validates(shape: list[queries.Stream]) -> None:
    # Documents are not validated when built (queries.py): this is where a bad one is caught.
    document = queries.packed_document(tuple(shape))
    assert queries.validation_errors(document) == []
    assert len(document.document.definitions[0].selection_set.selections) == len(shape)


def test_the_text_sent_is_the_document_and_is_parsed_once_per_shape() -> None:
    shape = (queries.CUSTOMERS, queries.METRICS)
    template = queries.packed_document(shape)
    request = template.with_variables({"f0": 100, "o0": 0})
    assert request.payload["query"] == template.text
    assert request.payload["variables"] == {"f0": 100, "o0": 0}
    assert request.payload["operationName"] == "UsagePages"
    assert request.document is template.document  # parsed once, shared
    assert graphql.print_ast(request.document) == graphql.print_ast(graphql.parse(template.text))


def test_documents_are_built_once_per_shape() -> None:
    shape = (queries.SNAPSHOTS, queries.SNAPSHOTS, queries.METRICS)
    assert queries.packed_document(shape) is queries.packed_document(shape)


def test_entity_streams_take_an_id_and_list_streams_hide_system_records() -> None:
    text = graphql.print_ast(queries.packed_document((queries.SNAPSHOTS, queries.METRICS)).document)
    assert "customer: $e0" in text and "instance: $e1" in text
    for stream in (queries.CUSTOMERS, queries.INSTANCES):
        assert "isSystem: false" in stream.fixed_args


def test_a_document_that_does_not_match_the_schema_is_refused() -> None:
    broken = queries.Stream(
        name="broken",
        root_field="customers",
        entity_arg=None,
        fixed_args="",
        range_args=(),
        selection="nodes { id noSuchField }",
    )
    errors = queries.validation_errors(queries.packed_document((broken,)))
    assert len(errors) == 1 and "noSuchField" in errors[0].message


def test_text_that_is_not_graphql_is_refused() -> None:
    broken = queries.Stream(
        name="unbalanced",
        root_field="customers",
        entity_arg=None,
        fixed_args="",
        range_args=(),
        selection="nodes { id",
    )
    errors = queries.validation_errors(queries.packed_document((broken,)))
    assert len(errors) == 1 and "Syntax Error" in errors[0].message
