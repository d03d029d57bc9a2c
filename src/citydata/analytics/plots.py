"""Plots of analytics results with matplotlib (Agg backend, no display): PNG or SVG, chosen by the file name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from citydata.analytics.model import Query, Result
from citydata.errors import ValidationFailed


def render(query: Query, result: Result, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("png", "svg"):
        raise ValidationFailed(f"{path.name}: plots are .png or .svg", code="bad_format")
    chart = query.chart
    fig, ax = plt.subplots(figsize=(11, 6), dpi=110)
    try:
        if not result.rows and not result.series:
            ax.text(0.5, 0.5, "no data in the window", ha="center", va="center", transform=ax.transAxes)
        elif chart.kind == "heatmap":
            _heatmap(fig, ax, result.rows, chart.x, chart.y, chart.value)
        elif chart.kind == "scatter":
            pts = [r for r in result.rows if r.get(chart.x) is not None and r.get(chart.y) is not None]
            if not pts:
                ax.text(0.5, 0.5, f"no rows with both {chart.x} and {chart.y}", ha="center", va="center",
                        transform=ax.transAxes)
            ax.scatter([r[chart.x] for r in pts], [r[chart.y] for r in pts])
            for r in pts:
                ax.annotate(str(r.get(chart.label, "")), (r[chart.x], r[chart.y]), fontsize=8,
                            xytext=(3, 3), textcoords="offset points")
            ax.set_xlabel(chart.x)
            ax.set_ylabel(chart.y)
        elif chart.kind == "timeseries":
            _timeseries(ax, result, chart.y, chart.value)
        ax.set_title(f"{query.title}\n{chart.title} · {_window(result)}", fontsize=10)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format=fmt)
    finally:
        plt.close(fig)
    return path


def _window(result: Result) -> str:
    p = result.params
    if "start" in p and "end" in p:
        return f"{p['start']:%Y-%m-%d %H:%M} .. {p['end']:%Y-%m-%d %H:%M} UTC"
    return ""


def _heatmap(fig: Any, ax: Any, rows: list[dict[str, Any]], x: str, y: str, value: str) -> None:
    ys = sorted({str(r[y]) for r in rows})
    grid = [[0.0] * 24 for _ in ys]
    for r in rows:
        grid[ys.index(str(r[y]))][int(r[x])] = float(r.get(value) or 0.0)
    im = ax.imshow(grid, aspect="auto", cmap="viridis")
    ax.set_yticks(range(len(ys)), ys, fontsize=8)
    ax.set_xticks(range(0, 24, 2))
    ax.set_xlabel("local hour of day")
    fig.colorbar(im, ax=ax, label=value)


def _timeseries(ax: Any, result: Result, left: str, right: str) -> None:
    from datetime import datetime

    top = sorted(result.series, key=lambda k: -sum((p.get(left) or 0) for p in result.series[k]))[:4]
    ax2 = ax.twinx()
    for name in top:
        pts = result.series[name]
        t = [datetime.fromisoformat(p["hour"]) for p in pts]
        ax.plot(t, [p.get(left) or 0 for p in pts], drawstyle="steps-post", label=f"{name} {left}")
        ax2.plot(t, [p.get(right) for p in pts], linestyle="--", label=f"{name} {right}")
    ax.set_ylabel(left)
    ax2.set_ylabel(right)
    ax.legend(loc="upper left", fontsize=8)
    ax2.legend(loc="upper right", fontsize=8)
