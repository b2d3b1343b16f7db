"""The benchmark plot (benchmark.md): median time per query and engine, grouped bars, log scale.

Reads the report `run_bench` returns (or its JSON). A cell a peer cannot express is labelled
"n/a", a skipped one "skip", an answer that differs from the parallel engine's is flagged "≠";
the floor (numpy sum over the query's rows) is drawn as a black tick per query.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ENGINE_ORDER = ("parallel", "chdb", "duckdb", "reference")
COLOURS = {"parallel": "#1f77b4", "chdb": "#ff7f0e", "duckdb": "#2ca02c", "reference": "#7f7f7f"}


def plot_report(report: dict[str, Any], out: Path) -> Path:
    """Write the PNG plot of `report` to `out` (parent directories created); returns `out`.
    Raises ValueError if the report holds no timed result."""
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    rows = report.get("results", [])
    queries = list(dict.fromkeys(r["query"] for r in rows))
    present = {r["engine"] for r in rows}
    engines = [e for e in ENGINE_ORDER if e in present] + sorted(present - set(ENGINE_ORDER))
    cell = {(r["engine"], r["query"]): r for r in rows}
    medians = [r["median_ms"] for r in rows if "median_ms" in r]
    if not medians:
        raise ValueError("the report has no timed result to plot")
    floor = report.get("floor", {})
    low = min(medians + [f["ms"] for f in floor.values() if f.get("ms", 0) > 0])

    width = 0.8 / max(len(engines), 1)
    fig, ax = plt.subplots(figsize=(max(8.0, 1.6 * len(queries)), 5.0), dpi=120)
    for i, engine in enumerate(engines):
        xs, ys = [], []
        for q, name in enumerate(queries):
            x = q - 0.4 + width * (i + 0.5)
            row = cell.get((engine, name))
            if row is None:
                continue
            if "median_ms" not in row:
                mark = "skip" if "skipped" in row else "n/a"
                ax.text(x, low, mark, rotation=90, ha="center", va="bottom", fontsize=7)
                continue
            xs.append(x)
            ys.append(row["median_ms"])
            if row.get("equal_to_parallel") is False:
                ax.text(x, row["median_ms"], "≠", ha="center", va="bottom", color="red")
        ax.bar(xs, ys, width, label=engine, color=COLOURS.get(engine))
    for q, name in enumerate(queries):
        if floor.get(name, {}).get("ms", 0) > 0:
            ax.hlines(floor[name]["ms"], q - 0.45, q + 0.45, colors="black", linewidth=1.5)
    ax.plot([], [], color="black", label="floor (numpy sum)")
    ax.set_yscale("log")
    ax.set_ylabel("median time (ms, log scale)")
    ax.set_xticks(range(len(queries)), queries, rotation=20, ha="right")
    size = report.get("size")
    ax.set_title(f"query mix, {size:,} events" if isinstance(size, int) else "query mix")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", which="both", alpha=0.3)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", bbox_inches="tight")
    plt.close(fig)
    return out
