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
    from sim.run.runner import run_to_folder
    from sim.scenario.load import load_scenario

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


def test_each_figure_shows_what_it_is_for(shipped_run):
    """The fixes one by one: legends off the data; the per-workload quality axis zoomed to the
    data with intervals drawn; success over time zoomed (or left out when nothing failed);
    fault windows in the traffic share named in its legend."""
    import matplotlib.pyplot as plt
    import pandas as pd

    from sim.report.figures import draw_figures
    from sim.report.run_data import load_run

    run = load_run(shipped_run)
    drawn = {file: fig for file, (_, fig) in draw_figures(run).items()}
    for fig in drawn.values():
        fig.canvas.draw()
    renderer = drawn["cost_vs_quality.png"].canvas.get_renderer()
    for file in ("cost_vs_quality.png", "per_workload.png"):
        fig = drawn[file]
        legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
        assert legends, file
        for legend in legends:
            box = legend.get_window_extent(fig.canvas.get_renderer())
            assert not any(box.overlaps(ax.get_window_extent(renderer)) for ax in fig.axes), (file, "legend on data")
    quality_ax = drawn["per_workload.png"].axes[1]
    low = min(s.workloads.quality_lo.fillna(s.workloads.mean_quality).min() for s in run.series.values())
    high = max(s.workloads.quality_hi.fillna(s.workloads.mean_quality).max() for s in run.series.values())
    bottom, top = quality_ax.get_ylim()
    # Zoomed: a margin of at most 15% of the data's range or 0.02 on each side, not a 0-1 axis.
    assert bottom <= low and high <= top and (top - bottom) <= (high - low) + max(0.04, 0.3 * (high - low)) + 1e-9
    requests = pd.read_parquet(shipped_run / "requests.parquet", columns=["status"])
    if (requests.status == "ok").all():
        assert "success_over_time.png" not in drawn
    else:
        bottom, _ = drawn["success_over_time.png"].axes[0].get_ylim()
        lowest = min(float((s.success_ok / s.success_total.clip(1))[s.success_total > 0].min())
                     for s in run.series.values())
        assert bottom <= lowest and (lowest < 0.5 or bottom > 0.0)  # zoomed unless a policy fell below half
    names = [t.get_text() for legend in drawn["traffic_share.png"].legends for t in legend.get_texts()]
    assert ("fault window" in names) == bool(run.fault_windows)
    for fig in drawn.values():
        plt.close(fig)
