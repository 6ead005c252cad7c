"""The reference histograms a benchmark result carries: bins as :class:`Histogram` defines them,
decile edges strictly increasing even when many lengths repeat."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from customer_model_factory.stages.benchmark.run import (
    SCORE_EDGES,
    reference_histograms,
    score_histogram,
)


def test_score_edges_cut_zero_to_one_in_ten_equal_bins():
    assert SCORE_EDGES == (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    histogram = score_histogram([0.0, 0.1, 0.0999, 0.5, 0.9, 1.0])
    # 0.1 opens bin 1; 0.9 and 1.0 fall in the last bin [0.9, inf).
    assert histogram.counts == (2, 1, 0, 0, 0, 1, 0, 0, 0, 2)
    assert histogram.total == 6


def test_no_trace_gives_no_histograms():
    assert reference_histograms([], [], "test") is None


def test_identical_lengths_give_one_edge():
    histograms = reference_histograms([0.5] * 5, [40] * 5, "validation")
    assert histograms is not None
    assert histograms.input_chars.edges == (40.0,)
    assert histograms.input_chars.counts == (0, 5)
    assert histograms.source_split == "validation"


@given(st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 5000)), min_size=1, max_size=300))
def test_histograms_count_every_value_once_with_strictly_increasing_edges(pairs):
    scores = [score for score, _ in pairs]
    chars = [length for _, length in pairs]
    histograms = reference_histograms(scores, chars, "test")
    assert histograms is not None
    for histogram, values in ((histograms.score, scores), (histograms.input_chars, chars)):
        edges = np.array(histogram.edges)
        assert np.all(np.diff(edges) > 0)
        assert histogram.total == len(values) == sum(histogram.counts)
        lows = np.concatenate(([-np.inf], edges))
        highs = np.concatenate((edges, [np.inf]))
        data = np.array(values, dtype=float)
        expected = [
            int(((data >= lo) & (data < hi)).sum()) for lo, hi in zip(lows, highs, strict=True)
        ]
        assert list(histogram.counts) == expected
    assert len(histograms.input_chars.edges) <= 9
