"""The dashboard pictures in docs/observability.md: which queries each panel's picture shows,
where the picture lives, and rendering it from saved range-query results.

The results come from real runs, with `CHATCLUSTER_RENDER_PANELS=1`: the chat boards from
tests/observability/test_prometheus.py (a Prometheus scraping a devcluster under load, saved to
`RESULTS`), the operator board from tests/observability/test_operator_prometheus.py (a
Prometheus scraping the operator on a real control plane, saved to `OPERATOR_RESULTS`). Each
range-queries its boards' expressions, saves the results and renders the pictures. Without the
variable the tests only check (CI never rewrites docs). `python -m monitoring.panels`
re-renders every picture from the saved results, so a renderer change needs no cluster.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from chat_operator.builders import dashboards

from monitoring.svg_chart import Chart, Series, render

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "observability.md"
PANELS_DIR = ROOT / "docs" / "observability" / "panels"
RESULTS = PANELS_DIR / "results.json"
OPERATOR_RESULTS = PANELS_DIR / "results-operator.json"
CHAT_BOARDS = ("chat-overview.json", "chat-components.json")
OPERATOR_BOARDS = ("operator.json",)
COMPONENTS = ("ws", "api", "workers")
"""The component board is pictured for the first of these whose queries return data."""
RATE_INTERVAL = "30s"
"""What `$__rate_interval` stands for: the tests scrape every second."""

Board = dict[str, Any]
Panel = dict[str, Any]
RangeQuery = Callable[[str], list[dict[str, Any]]]
"""PromQL -> Prometheus' `result` of a range query (`metric`, `values`)."""


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def picture_path(board: Board, panel: Panel) -> Path:
    return PANELS_DIR / f"{board['uid']}-{slug(panel['title'])}.svg"


def picture_link(board: Board, panel: Panel) -> str:
    """The picture's path relative to docs/observability.md, as the doc links it."""
    return picture_path(board, panel).relative_to(DOC.parent).as_posix()


def boards() -> Iterator[tuple[str, Board]]:
    yield from dashboards.all_boards().items()


def substitute(expr: str, namespace: str, name: str, component: str | None = None) -> str:
    """A panel's PromQL with the dashboard variables set, as Grafana would send it."""
    out = (
        expr.replace("$__rate_interval", RATE_INTERVAL)
        .replace("$namespace", namespace)
        .replace("$chatcluster", name)
    )
    if component is not None:
        out = out.replace("$component", component)
    return out


def legend(legend_format: str, labels: dict[str, str]) -> str:
    """Grafana's legend: `{{label}}` replaced by the series' label; the labels when empty."""
    if not legend_format:
        inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        return f"{{{inner}}}"
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), legend_format)


def _query_panel(panel: Panel, query: RangeQuery, expr_of: Callable[[str], str]) -> list[Any]:
    out = []
    for target in panel["targets"]:
        for result in query(expr_of(target["expr"])):
            points = [
                [round(float(t), 3), float(f"{float(v):.6g}")]
                for t, v in result["values"]
                if v not in ("NaN", "+Inf", "-Inf")
            ]
            if points:
                out.append(
                    {"name": legend(target["legendFormat"], result["metric"]), "points": points}
                )
    return out


def _has_signal(series: list[Any]) -> bool:
    return any(v != 0 for s in series for _, v in s["points"])


def _component_series(
    panel: Panel, query: RangeQuery, namespace: str, name: str
) -> tuple[list[str], list[Any]]:
    """The component board's panel for every component whose series are not all zero (a
    gateway exports `chat_worker_processes` too, as 0), else for the first with data; the
    legend names the component."""
    found: list[tuple[str, list[Any]]] = []
    for component in COMPONENTS:

        def expr_of(e: str, c: str = component) -> str:
            return substitute(e, namespace, name, c)

        series = _query_panel(panel, query, expr_of)
        if series:
            found.append((component, series))
    chosen = [(c, s) for c, s in found if _has_signal(s)] or found[:1]
    return [c for c, _ in chosen], [
        {**s, "name": f"{c}: {s['name']}"} for c, series in chosen for s in series
    ]


def collect(
    query: RangeQuery, namespace: str, name: str, files: tuple[str, ...] = CHAT_BOARDS
) -> list[dict[str, Any]]:
    """Every panel's series of the boards ``files`` from range queries (the tests pass
    Prometheus' API)."""
    saved = []
    for file, board in boards():
        if file not in files:
            continue
        for panel in board["panels"]:
            components: list[str] = []
            if file == "chat-components.json":
                components, series = _component_series(panel, query, namespace, name)
            else:
                series = _query_panel(panel, query, lambda e: substitute(e, namespace, name))
            saved.append(
                {
                    "board": file,
                    "title": panel["title"],
                    "components": components,
                    "series": series,
                }
            )
    return saved


def save(start: float, end: float, panels: list[dict[str, Any]], path: Path) -> None:
    """The results, times relative to ``start``: small, and stable in review diffs."""
    for entry in panels:
        for series in entry["series"]:
            series["points"] = [[round(t - start, 3), v] for t, v in series["points"]]
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"duration_s": round(end - start, 3), "panels": panels}
    path.write_text(json.dumps(document, indent=None, separators=(",", ":")) + "\n")


def chart(board: Board, panel: Panel, entry: dict[str, Any] | None, duration: float) -> Chart:
    defaults = panel["fieldConfig"]["defaults"]
    thresholds = [
        (float(step["value"]), str(step["color"]))
        for step in defaults["thresholds"]["steps"]
        if step["value"] is not None
    ]
    title = panel["title"]
    note = "not in the saved results: re-run the test with CHATCLUSTER_RENDER_PANELS=1"
    series: list[Series] = []
    if entry is not None:
        if entry["components"]:
            title = f"{title} (component {', '.join(entry['components'])})"
        series = [Series(s["name"], [(t, v) for t, v in s["points"]]) for s in entry["series"]]
        note = "no data"
    return Chart(
        title,
        defaults["unit"],
        series,
        thresholds=thresholds,
        note=note,
        start=0.0,
        end=duration,
    )


def saved() -> list[dict[str, Any]]:
    """The saved results that exist (each test run writes its own file)."""
    return [json.loads(p.read_text()) for p in (RESULTS, OPERATOR_RESULTS) if p.exists()]


def pictures(documents: list[dict[str, Any]]) -> dict[Path, str]:
    """Every panel of every board -> its SVG, from saved results."""
    found = {
        (p["board"], p["title"]): (p, float(d["duration_s"]))
        for d in documents
        for p in d["panels"]
    }
    out = {}
    for file, board in boards():
        for panel in board["panels"]:
            entry, duration = found.get((file, panel["title"]), (None, 60.0))
            out[picture_path(board, panel)] = render(chart(board, panel, entry, duration))
    return out


def write(documents: list[dict[str, Any]]) -> list[Path]:
    PANELS_DIR.mkdir(parents=True, exist_ok=True)
    files = pictures(documents)
    for path, text in files.items():
        path.write_text(text)
    return sorted(files)


def main() -> None:
    for path in write(saved()):
        print(path.relative_to(ROOT))


if __name__ == "__main__":
    main()
