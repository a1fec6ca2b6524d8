"""Plot the read cost from a ``timak bench --json`` file.

    python benchmarks/plot.py benchmarks/results-2026-11-23.json \
        --out docs/benchmark-read-cost.png

Left: median time to decode and merge a key's siblings (the ``merge``
scenario: the work of every read), against the sibling count, one line per
timeline size, with its floor (decode alone) dashed. Right: the same as a
ratio to the floor. Needs matplotlib (``pip install -e .[dev]``).

``--markdown`` prints the results as the Markdown table in docs/benchmarks.md
instead (no matplotlib needed).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "docs" / "benchmark-read-cost.png"


def read_costs(results: list[dict[str, Any]]) -> dict[int, list[tuple[int, float, float]]]:
    """Timeline size -> sorted ``(siblings, p50_ms, floor_p50_ms)`` of the merge cases."""
    series: dict[int, list[tuple[int, float, float]]] = defaultdict(list)
    for result in results:
        if result.get("scenario") != "merge":
            continue
        params = result["params"]
        series[int(params["items"])].append(
            (int(params["siblings"]), float(result["p50_ms"]), float(result["floor_p50_ms"]))
        )
    return {items: sorted(points) for items, points in sorted(series.items())}


def plot(results: list[dict[str, Any]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = read_costs(results)
    if not series:
        raise SystemExit("no merge results in the file: run `timak bench` without --only")
    fig, (cost, ratio) = plt.subplots(1, 2, figsize=(11, 4.5))
    for items, points in series.items():
        siblings = [p[0] for p in points]
        line = cost.plot(siblings, [p[1] for p in points], marker="o",
                         label=f"{items:,} items: decode + merge")[0]
        cost.plot(siblings, [p[2] for p in points], linestyle="--", color=line.get_color(),
                  label=f"{items:,} items: decode only (floor)")
        ratio.plot(siblings, [p[2] / p[1] for p in points], marker="o",
                   color=line.get_color(), label=f"{items:,} items")
    cost.set(xscale="log", yscale="log", xlabel="siblings per key",
             ylabel="median ms per read", title="Read cost (decode + merge)")
    ratio.set(xscale="log", xlabel="siblings per key", ylabel="floor time / read time",
              title="Read speed as a share of decode alone", ylim=(0, 1.1))
    ticker = matplotlib.ticker
    for axes in (cost, ratio):
        axes.set_xticks(sorted({p[0] for points in series.values() for p in points}))
        axes.xaxis.set_major_formatter(ticker.ScalarFormatter())
        axes.xaxis.set_minor_formatter(ticker.NullFormatter())
        axes.grid(True, which="major", alpha=0.3)
    cost.yaxis.set_major_formatter(ticker.FuncFormatter(lambda y, _: f"{y:g}"))
    cost.yaxis.set_minor_formatter(ticker.NullFormatter())
    cost.legend(fontsize=7)
    ratio.legend(fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def markdown_table(results: list[dict[str, Any]]) -> str:
    """The results as a Markdown table: medians, p99, floors and ratios."""
    lines = [
        "| case | backend | median ms | p99 ms | floor | floor median ms | ratio "
        "| cpu ratio | target |",
        "|---|---|--:|--:|---|--:|--:|--:|---|",
    ]
    for r in results:
        target = "-"
        if r.get("target") is not None:
            verdict = "met" if r["meets_target"] else "**missed**"
            target = f"≥ {r['target']:.2f} {verdict}"
        lines.append(
            f"| {r['name']} | {r['backend']} | {r['p50_ms']:.3g} | {r['p99_ms']:.3g} "
            f"| {r.get('floor_name', '')} | {r.get('floor_p50_ms', 0):.3g} | {r['ratio']:.2f} "
            f"| {r.get('cpu_ratio', float('nan')):.2f} | {target} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a file written by `timak bench --json`")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="PNG to write")
    parser.add_argument("--markdown", action="store_true",
                        help="print the results as a Markdown table instead of plotting")
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text())["results"]
    if args.markdown:
        print(markdown_table(results))
        return 0
    plot(results, args.out)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
