"""The evidence report's curves equal scikit-learn's; PSI and the SVG charts behave."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory.report.curves import (
    calibration_points,
    decimate,
    pr_points,
    roc_points,
)
from customer_model_factory.report.svg import heatmap, line_chart

metrics = pytest.importorskip("sklearn.metrics")
calibration = pytest.importorskip("sklearn.calibration")

scored = st.lists(
    st.tuples(
        st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]) | st.floats(0, 1), st.booleans()
    ),
    min_size=2,
    max_size=60,
).filter(lambda rows: any(u for _, u in rows) and not all(u for _, u in rows))


@settings(max_examples=80, deadline=None)
@given(scored)
def test_roc_points_equal_sklearn_roc_curve(rows) -> None:
    scores = [s for s, _ in rows]
    unsafe = [u for _, u in rows]
    fpr, tpr, _ = metrics.roc_curve(unsafe, scores, drop_intermediate=False)
    ours = roc_points(scores, unsafe)
    assert np.allclose([p[0] for p in ours], fpr) and np.allclose([p[1] for p in ours], tpr)


@settings(max_examples=80, deadline=None)
@given(scored)
def test_pr_points_equal_sklearn_precision_recall_curve(rows) -> None:
    scores = [s for s, _ in rows]
    unsafe = [u for _, u in rows]
    precision, recall, _ = metrics.precision_recall_curve(unsafe, scores)
    theirs = sorted(zip(recall.tolist(), precision.tolist(), strict=True))
    ours = sorted(pr_points(scores, unsafe))
    assert np.allclose(ours, theirs)


@settings(max_examples=60, deadline=None)
@given(scored)
def test_calibration_points_equal_sklearn_calibration_curve(rows) -> None:
    scores = [s for s, _ in rows]
    unsafe = [u for _, u in rows]
    prob_true, prob_pred = calibration.calibration_curve(unsafe, scores, n_bins=10)
    ours = calibration_points(scores, unsafe)
    assert np.allclose([p[0] for p in ours], prob_pred)
    assert np.allclose([p[1] for p in ours], prob_true)


def test_curves_of_a_single_class_are_undefined_not_invented() -> None:
    assert roc_points([0.2, 0.8], [True, True]) == []
    assert pr_points([0.2, 0.8], [False, False]) == []


def test_decimate_keeps_ends_and_limit() -> None:
    points = [(float(i), float(i)) for i in range(1000)]
    kept = decimate(points, 50)
    assert len(kept) == 50 and kept[0] == points[0] and kept[-1] == points[-1]


def test_charts_are_well_formed_svg_and_escape_labels() -> None:
    chart = line_chart(
        "ROC <&>",
        [("a<b", [(0.0, 0.0), (0.5, 0.7), (1.0, 1.0)])],
        x_label="x",
        y_label="y",
        diagonal=True,
    )
    root = ET.fromstring(chart)
    assert root.tag.endswith("svg") and "<&>" not in chart and "&lt;&amp;&gt;" in chart
    grid = heatmap("Confusion", ("unsafe", "safe"), ("approve", "block"), [[1, 9], [8, 2]])
    assert ET.fromstring(grid).tag.endswith("svg") and ">9<" in grid
