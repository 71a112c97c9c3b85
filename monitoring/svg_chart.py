"""A small line-chart renderer to SVG, for the dashboard pictures in docs/observability.md.

No plotting library is a dependency of this project, and the pictures need only a few things
Grafana's time-series panel shows: a title, a time axis, a value axis in the panel's unit
(Grafana's unit ids: `s`, `bytes`, `percentunit`, `reqps`, `ops`, `short`), the threshold lines,
one line per series and a legend. The output is deterministic for the same input (coordinates
rounded to 0.1 px), so a re-render of unchanged data does not churn the committed files.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

# Grafana's classic palette: readable on white, distinct for the first eight series.
PALETTE = (
    "#1f78c1",
    "#e24d42",
    "#7eb26d",
    "#eab839",
    "#6ed0e0",
    "#ef843c",
    "#ba43a9",
    "#705da0",
)
WIDTH = 560
PLOT_HEIGHT = 170
LEFT, RIGHT, TOP = 70, 14, 30
FONT = "font-family='sans-serif' font-size='11'"
CHAR_W = 6.2  # mean glyph width of an 11 px sans-serif, to lay out the legend


@dataclass(frozen=True)
class Series:
    """One line: a legend name and (unix seconds, value) points in time order. NaN and
    infinite values (a quantile of nothing) are gaps, as in Grafana."""

    name: str
    points: Sequence[tuple[float, float]]


@dataclass(frozen=True)
class Chart:
    title: str
    unit: str
    series: Sequence[Series]
    thresholds: Sequence[tuple[float, str]] = ()
    """(value, colour) lines drawn across the plot when inside its range."""
    note: str = ""
    """Shown in the plot when there is no data (say why)."""
    start: float | None = None
    end: float | None = None
    """The time range; by default the data's own."""
    colours: Sequence[str] = field(default=PALETTE)


@dataclass(frozen=True)
class Scale:
    """How a unit's values read on an axis: multiply by ``factor``, append ``suffix``."""

    factor: float
    suffix: str


def unit_scale(unit: str, largest: float) -> Scale:
    """The axis scale for values up to ``largest`` (absolute) in a Grafana unit."""
    if unit == "s":
        if largest == 0:
            return Scale(1, " s")
        if largest < 1e-3:
            return Scale(1e6, " µs")
        if largest < 1:
            return Scale(1e3, " ms")
        return Scale(1, " s")
    if unit == "bytes":
        for power, name in ((3, "GiB"), (2, "MiB"), (1, "KiB")):
            if largest >= 1024**power:
                return Scale(1024.0**-power, f" {name}")
        return Scale(1, " B")
    if unit == "percentunit":
        return Scale(100, " %")
    per = {"reqps": " req/s", "ops": " ops/s"}.get(unit, "")
    for power, prefix in ((2, "M"), (1, "k")):
        if largest >= 1000**power:
            return Scale(1000.0**-power, f"{prefix}{per}")
    return Scale(1, per)


def nice_step(span: float, target_ticks: int = 4) -> float:
    """A 1, 2, 2.5 or 5 times a power of ten step giving about ``target_ticks`` intervals."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / target_ticks
    if raw <= 0:  # a subnormal span whose quotient underflowed: no meaningful scale
        return 1.0
    power = 10.0 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * power:
            return m * power
    return 10.0 * power  # not reached: the loop's last multiplier always fits


def ticks(low: float, high: float) -> tuple[list[float], float]:
    """Tick values covering [low, high] and their step; the axis spans the outer ticks."""
    if high <= low:
        high = low + (abs(low) or 1.0)
    step = nice_step(high - low)
    first = math.floor(low / step + 1e-9) * step
    out: list[float] = []
    value = first
    while value < high - 1e-9 * step or not out:
        out.append(value)
        value = first + len(out) * step
    out.append(value)
    return out, step


TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)


def time_step(span: float, most: int = 7) -> int:
    """The smallest clock-friendly step (seconds) giving at most ``most`` intervals."""
    return next((s for s in TIME_STEPS if span / s <= most), TIME_STEPS[-1])


def format_tick(value: float, step: float, scale: Scale) -> str:
    scaled, scaled_step = value * scale.factor, step * scale.factor
    decimals = 0  # as many as the step needs: 50 -> 0, 2.5 -> 1, 0.25 -> 2
    while decimals < 6 and abs(round(scaled_step, decimals) - scaled_step) > 1e-9 * scaled_step:
        decimals += 1
    text = f"{scaled:.{decimals}f}"
    if text.startswith("-") and float(text) == 0:
        text = text[1:]
    return text + scale.suffix


def format_elapsed(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def _finite(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    return [(t, v) for t, v in points if math.isfinite(v)]


def _segments(points: Sequence[tuple[float, float]]) -> list[list[tuple[float, float]]]:
    """Split a line where a value is missing or not finite (the series did not exist then)."""
    if not points:
        return []
    gaps = sorted(b[0] - a[0] for a, b in itertools.pairwise(points))
    usual = gaps[len(gaps) // 2] if gaps else 0.0
    out: list[list[tuple[float, float]]] = [[]]
    previous: float | None = None
    for t, v in points:
        if not math.isfinite(v):
            if out[-1]:
                out.append([])
            previous = None
            continue
        if previous is not None and usual and t - previous > 2.5 * usual and out[-1]:
            out.append([])
        out[-1].append((t, v))
        previous = t
    return [s for s in out if s]


def _legend_rows(names: Sequence[str]) -> list[list[tuple[int, str]]]:
    rows: list[list[tuple[int, str]]] = [[]]
    used = 0.0
    usable = WIDTH - LEFT - RIGHT
    for index, name in enumerate(names):
        need = 22 + CHAR_W * len(name) + 14
        if rows[-1] and used + need > usable:
            rows.append([])
            used = 0.0
        rows[-1].append((index, name))
        used += need
    return [r for r in rows if r]


def render(chart: Chart) -> str:
    """The chart as a standalone SVG document."""
    lines = [(s.name, _finite(s.points), s.points) for s in chart.series]
    values = [v for _, pts, _ in lines for _, v in pts]
    times = [t for _, pts, _ in lines for t, _ in pts]
    start = chart.start if chart.start is not None else (min(times) if times else 0.0)
    end = chart.end if chart.end is not None else (max(times) if times else start + 60)
    if end <= start:
        end = start + 1
    low = min([0.0, *values])
    high = max([0.0, *values])
    # Ticks are chosen in the displayed unit, so that MiB or ms read as round numbers.
    scale = unit_scale(chart.unit, max(abs(low), abs(high)))
    shown, shown_step = ticks(low * scale.factor, high * scale.factor)
    y_ticks, y_step = [t / scale.factor for t in shown], shown_step / scale.factor
    y_low, y_high = y_ticks[0], y_ticks[-1]
    plot_w = WIDTH - LEFT - RIGHT
    legend = _legend_rows([name for name, _, _ in lines])
    height = TOP + PLOT_HEIGHT + 34 + 16 * len(legend) + 6

    def x(t: float) -> float:
        return LEFT + (t - start) / (end - start) * plot_w

    def y(v: float) -> float:
        return TOP + PLOT_HEIGHT - (v - y_low) / (y_high - y_low) * PLOT_HEIGHT

    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{height}' "
        f"viewBox='0 0 {WIDTH} {height}' role='img' aria-label='{escape(chart.title)}'>",
        f"<rect width='{WIDTH}' height='{height}' fill='#ffffff' stroke='#d8d9da'/>",
        f"<text x='{LEFT}' y='18' font-family='sans-serif' font-size='13' font-weight='bold' "
        "fill='#202226'>"
        f"{escape(chart.title)}</text>",
    ]
    for value in y_ticks:
        py = y(value)
        out.append(
            f"<line x1='{LEFT}' y1='{py:.1f}' x2='{LEFT + plot_w}' y2='{py:.1f}' stroke='#e9e9ea'/>"
        )
        out.append(
            f"<text x='{LEFT - 6}' y='{py + 4:.1f}' {FONT} text-anchor='end' fill='#464c54'>"
            f"{escape(format_tick(value, y_step, scale))}</text>"
        )
    every = time_step(end - start)
    for n in range(int((end - start) // every) + 1):
        offset = n * every
        px = x(start + offset)
        out.append(
            f"<line x1='{px:.1f}' y1='{TOP + PLOT_HEIGHT}' x2='{px:.1f}' "
            f"y2='{TOP + PLOT_HEIGHT + 4}' stroke='#9fa7b3'/>"
        )
        out.append(
            f"<text x='{px:.1f}' y='{TOP + PLOT_HEIGHT + 16}' {FONT} text-anchor='middle' "
            f"fill='#464c54'>{format_elapsed(offset)}</text>"
        )
    out.append(
        f"<polyline points='{LEFT},{TOP} {LEFT},{TOP + PLOT_HEIGHT} "
        f"{LEFT + plot_w},{TOP + PLOT_HEIGHT}' fill='none' stroke='#9fa7b3'/>"
    )
    out.append(
        f"<text x='{WIDTH - RIGHT}' y='{TOP + PLOT_HEIGHT + 28}' {FONT} text-anchor='end' "
        f"fill='#7b8087'>time into the run (m:ss)</text>"
    )
    for value, colour in chart.thresholds:
        if y_low <= value <= y_high:
            py = y(value)
            out.append(
                f"<line x1='{LEFT}' y1='{py:.1f}' x2='{LEFT + plot_w}' y2='{py:.1f}' "
                f"stroke='{escape(colour)}' stroke-dasharray='4 3'/>"
            )
    for index, (_, _, raw) in enumerate(lines):
        colour = chart.colours[index % len(chart.colours)]
        for segment in _segments(raw):
            coords = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in segment)
            if len(segment) == 1:
                px, py = x(segment[0][0]), y(segment[0][1])
                out.append(f"<circle cx='{px:.1f}' cy='{py:.1f}' r='1.5' fill='{colour}'/>")
            else:
                out.append(
                    f"<polyline class='series' data-series='{index}' points='{coords}' "
                    f"fill='none' stroke='{colour}' stroke-width='1.5'/>"
                )
    if not values:
        out.append(
            f"<text x='{LEFT + plot_w / 2:.1f}' y='{TOP + PLOT_HEIGHT / 2:.1f}' {FONT} "
            f"text-anchor='middle' fill='#7b8087'>{escape(chart.note or 'No data')}</text>"
        )
    row_y = TOP + PLOT_HEIGHT + 44
    for row in legend:
        px = float(LEFT)
        for index, name in row:
            colour = chart.colours[index % len(chart.colours)]
            out.append(
                f"<line x1='{px:.1f}' y1='{row_y - 4}' x2='{px + 16:.1f}' y2='{row_y - 4}' "
                f"stroke='{colour}' stroke-width='3'/>"
            )
            out.append(
                f"<text class='legend' x='{px + 22:.1f}' y='{row_y}' {FONT} fill='#202226'>"
                f"{escape(name)}</text>"
            )
            px += 22 + CHAR_W * len(name) + 14
        row_y += 16
    out.append("</svg>")
    return "\n".join(out) + "\n"
