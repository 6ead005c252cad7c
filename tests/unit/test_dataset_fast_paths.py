"""The dataset engine's faster ways of computing what a plain one would: each equals it."""

from __future__ import annotations

import datetime as dt

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from customer_model_factory.stages.dataset import engine
from customer_model_factory.stages.dataset.models import parse_rfc3339, rfc3339_seconds

_DIGIT_OR_NOT = st.sampled_from("0123456789019/:a\u0663")


@st.composite
def _common_shape(draw: st.DrawFn) -> str:
    """A text of the common shape's length and separators, digits (mostly) in between."""
    parts = [draw(st.text(_DIGIT_OR_NOT, min_size=n, max_size=n)) for n in (4, 2, 2, 2, 2, 2)]
    return "{}-{}-{}T{}:{}:{}Z".format(*parts)


@settings(max_examples=500, deadline=None)
@given(st.one_of(_common_shape(), st.text(max_size=40)))
@example("2016-12-31T23:59:60Z")  # a leap second
@example("2024-02-30T00:00:00Z")  # no such day
@example("2024-03-05T24:00:00Z")  # no hour 24 in RFC 3339
@example("1969-12-31T23:59:59Z")  # before the epoch
@example("2024-03-05t12:34:56z")
@example("2024-03-05T12:34:56.5+02:00")
def test_rfc3339_seconds_is_parse_rfc3339_as_epoch_seconds(text):
    parsed = parse_rfc3339(text)
    assert rfc3339_seconds(text) == (None if parsed is None else parsed.timestamp())


def test_rfc3339_seconds_reads_the_common_shape():
    assert rfc3339_seconds("2024-03-05T12:34:56Z") == (
        dt.datetime(2024, 3, 5, 12, 34, 56, tzinfo=dt.UTC).timestamp()
    )


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(min_value=0, max_value=200))
def test_the_block_quote_count_equals_bytes_count(block, limit):
    limit = min(limit, len(block))
    assert engine._count_quotes(block, limit) == block.count(b'"', 0, limit)


def _naive_repeats(values: list[int]) -> list[tuple[int, int]]:
    first: dict[int, int] = {}
    found = []
    for index, value in enumerate(values):
        earlier = first.setdefault(value, index)
        if earlier != index:
            found.append((index, earlier))
    return found


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=30), max_size=60), st.integers(1, 40))
def test_repeats_are_found_in_index_order_even_when_hashes_collide(values, buckets):
    # The hash keeps only a value's remainder: unequal values share hashes, as a real hash may.
    hashes = np.array([value % buckets for value in values], dtype=np.int64)
    assert engine._repeated(hashes, values.__getitem__) == _naive_repeats(values)
