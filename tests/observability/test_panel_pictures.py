"""The dashboard pictures: the SVG renderer (monitoring/svg_chart.py) draws what it is given,
every panel of every board has its picture in docs/observability.md, and the committed pictures
are what the renderer makes of the saved results of the last real run (monitoring/panels.py)."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

from hypothesis import given, settings
from hypothesis import strategies as st

from monitoring import panels
from monitoring.svg_chart import Chart, Scale, Series, format_tick, render, ticks, unit_scale

SVG = "{http://www.w3.org/2000/svg}"


def _parse(text: str) -> ET.Element:
    return ET.fromstring(text)


def _texts(root: ET.Element, cls: str | None = None) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text") if cls is None or t.get("class") == cls]


def test_a_line_per_series_a_legend_and_axes_in_the_unit() -> None:
    p50 = Series("p50", [(t, 0.01) for t in range(0, 120, 2)])
    p99 = Series("p99", [(t, 0.02 + t / 1000) for t in range(0, 120, 2)])
    root = _parse(render(Chart("Latency", "s", [p50, p99], thresholds=[(0.25, "red")])))
    assert root.get("aria-label") == "Latency"
    lines = [p for p in root.iter(f"{SVG}polyline") if p.get("class") == "series"]
    assert [p.get("data-series") for p in lines] == ["0", "1"]
    assert _texts(root, "legend") == ["p50", "p99"]
    texts = _texts(root)
    assert "Latency" in texts
    assert "0 ms" in texts and "150 ms" in texts  # the values reach 138 ms
    assert "0:00" in texts and "1:30" in texts
    # The 250 ms threshold is above the axis (150 ms): not drawn.
    assert not [line for line in root.iter(f"{SVG}line") if line.get("stroke-dasharray")]


def test_a_threshold_inside_the_range_is_a_dashed_line() -> None:
    series = Series("lag", [(0, 10.0), (60, 90.0)])
    root = _parse(render(Chart("Lag", "s", [series], thresholds=[(60, "yellow")])))
    (dashed,) = [line for line in root.iter(f"{SVG}line") if line.get("stroke-dasharray")]
    assert dashed.get("stroke") == "yellow"


def test_missing_and_nan_values_break_the_line() -> None:
    points = [(float(t), 1.0) for t in range(0, 20)] + [(float(t), 2.0) for t in range(40, 60)]
    points[5] = (5.0, math.nan)
    root = _parse(render(Chart("Gaps", "short", [Series("x", points)])))
    lines = [p for p in root.iter(f"{SVG}polyline") if p.get("class") == "series"]
    assert len(lines) == 3  # 0-4, 6-19, 40-59


def test_no_data_says_why_and_escapes_text() -> None:
    root = _parse(render(Chart("A <b> & c", "ops", [], note="no operator here", start=0, end=60)))
    assert "no operator here" in _texts(root)
    assert "A <b> & c" in _texts(root)
    assert not list(root.iter(f"{SVG}polyline"))[1:]  # only the axes


def test_units() -> None:
    assert unit_scale("s", 0.2) == Scale(1e3, " ms")
    assert unit_scale("bytes", 80 * 1024**2) == Scale(1024.0**-2, " MiB")
    assert format_tick(0.05, 0.025, unit_scale("percentunit", 0.1)) == "5.0 %"
    assert format_tick(2.5, 2.5, unit_scale("reqps", 10)) == "2.5 req/s"
    assert format_tick(2000, 1000, unit_scale("short", 5000)) == "2k"


@settings(max_examples=60, deadline=None)
@given(
    st.floats(-1e6, 1e6, allow_nan=False),
    st.floats(0, 1e6, allow_nan=False),
)
def test_ticks_cover_the_range_with_equal_round_steps(low: float, width: float) -> None:
    values, step = ticks(low, low + width)
    # Covered to a millionth of a step (float rounding of the outer ticks).
    assert values[0] <= low + 1e-6 * step and values[-1] >= low + width - 1e-6 * step
    assert 2 <= len(values) <= 7
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert any(math.isclose(mantissa, m) for m in (1, 2, 2.5, 5, 10))


def test_a_subnormal_span_still_gets_ticks() -> None:
    """Found by the property above: 5e-324 / 4 underflows to 0, whose log10 raised."""
    values, step = ticks(0.0, 5e-324)
    assert values[0] <= 0.0 and values[-1] >= 5e-324 and step > 0


def test_collect_picks_components_with_signal_and_names_them() -> None:
    """A unit test of panels.collect with a stand-in for Prometheus' range query."""

    def query(expr: str) -> list[dict[str, object]]:
        value = "0"
        if "demo-workers" in expr and "chat_worker_processes" in expr:
            value = "2"
        elif "demo-api" in expr:
            return []
        return [{"metric": {"pod": "p"}, "values": [[100, value], [101, "NaN"]]}]

    found = {p["title"]: p for p in panels.collect(query, "ns", "demo")}
    workers = found["Worker processes"]
    assert workers["components"] == ["workers"]
    assert workers["series"] == [{"name": "workers: processes", "points": [[100.0, 2.0]]}]
    cpu = found["CPU"]  # all zero: the first component with data
    assert cpu["components"] == ["ws"]
    assert cpu["series"][0]["name"] == "ws: p"
    assert found["Connections"]["components"] == []


def test_every_panel_of_every_board_has_its_picture_in_the_doc() -> None:
    doc = panels.DOC.read_text()
    expected = set()
    for _, board in panels.boards():
        for panel in board["panels"]:
            path = panels.picture_path(board, panel)
            expected.add(path.name)
            assert f"]({panels.picture_link(board, panel)})" in doc, panel["title"]
            assert path.exists(), path
    on_disk = {p.name for p in panels.PANELS_DIR.glob("*.svg")}
    assert on_disk == expected, "stale pictures: " + ", ".join(sorted(on_disk - expected))


def test_committed_pictures_are_rendered_from_the_saved_results() -> None:
    """A renderer or board change without a re-render fails here: `python -m
    monitoring.panels` (re-render) or the Prometheus test with CHATCLUSTER_RENDER_PANELS=1."""
    assert panels.RESULTS.exists() and panels.OPERATOR_RESULTS.exists()
    for path, text in panels.pictures(panels.saved()).items():
        assert path.read_text() == text, f"{path.name} is stale"
