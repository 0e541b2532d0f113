"""Every document the client can send validates against the shipped schema."""

from __future__ import annotations

import itertools

import graphql
import pytest

from prismatic_usage import queries


@pytest.mark.parametrize("stream", queries.STREAMS, ids=lambda s: s.name)
def test_single_stream_documents_validate(stream: queries.Stream) -> None:
    document = queries.packed_document((stream,))
    assert graphql.validate(queries.schema(), document.document) == []
    text = graphql.print_ast(document.document)
    assert f"u0: {stream.root_field}(" in text
    assert "first: $f0" in text and "offset: $o0" in text


def test_every_packed_shape_up_to_three_slots_validates() -> None:
    for size in (2, 3):
        for shape in itertools.combinations_with_replacement(queries.STREAMS, size):
            document = queries.packed_document(shape)
            assert graphql.validate(queries.schema(), document.document) == []


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
    with pytest.raises(graphql.GraphQLError, match="noSuchField"):
        queries.packed_document((broken,))
