"""Every shipped scenario's report, as an approver sees it: in each figure no two labels
overlap and none leaves its axes (matplotlib's own text bounding boxes), and the page opens
in headless Chromium with every figure loaded and no console error."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from conftest import ROOT, open_in_chromium

SCENARIOS = sorted(p.name for p in (ROOT / "scenarios").glob("*.yaml"))


@pytest.fixture(scope="module", params=SCENARIOS)
def shipped_run(request, tmp_path_factory) -> Path:
    """The scenario as shipped, with one replication (the figures' points barely move with more)."""
    from sim.runner import run_to_folder
    from sim.scenario import load_scenario

    out = tmp_path_factory.mktemp(request.param.removesuffix(".yaml")) / "run"
    run_to_folder(load_scenario(ROOT / "scenarios" / request.param), out, replications=1, jobs=1)
    return out


def _label_boxes(fig):
    """(axes, [(text, window box)]) for every axes: the non-empty texts drawn on it."""
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        texts = [t for t in ax.texts if t.get_text().strip() and t.get_visible()]
        yield ax, ax.get_window_extent(renderer), [(t.get_text(), t.get_window_extent(renderer)) for t in texts]


def test_no_label_overlaps_another_or_leaves_its_axes(shipped_run):
    import matplotlib.pyplot as plt

    from sim.report.figures import draw_figures
    from sim.report.run_data import load_run

    drawn = draw_figures(load_run(shipped_run))
    assert "cost_vs_quality.png" in drawn and "per_workload.png" in drawn
    labelled = 0
    for file, (_, fig) in drawn.items():
        fig.canvas.draw()  # the layout as saved
        for ax, area, boxes in _label_boxes(fig):
            for text, box in boxes:
                assert area.x0 - 0.5 <= box.x0 and box.x1 <= area.x1 + 0.5, (file, text, "leaves the axes sideways")
                assert area.y0 - 0.5 <= box.y0 and box.y1 <= area.y1 + 0.5, (file, text, "leaves the axes")
            for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
                assert not box_a.overlaps(box_b), (file, a, b)
            labelled += len(boxes)
        plt.close(fig)
    # The cost-quality points are labelled (those adjustText could not place clear are dropped, not all).
    assert labelled >= 1


def test_the_report_opens_in_headless_chromium(shipped_run):
    expected = len(list(shipped_run.glob("*.png")))
    problems, (images, first_heading) = open_in_chromium(shipped_run / "report.html", [
        "[...document.images].map(i => [i.complete && i.naturalWidth > 0, i.naturalWidth])",
        "document.querySelector('h2').textContent"])
    assert problems == []
    assert len(images) == expected >= 5 and all(ok for ok, _ in images)
    assert all(800 <= width <= 1280 for _, width in images), images  # the 800-1280 px
    assert first_heading == "Decision"  # the page opens with the decision
