"""Plot or tabulate a ``timak bench --json`` file.

    python benchmarks/plot.py benchmarks/results-2026-11-30.json \
        --out docs/benchmark-medians.png
    python benchmarks/plot.py benchmarks/results-2026-11-30.json --markdown

The figure: one group of bars per case and backend, the median ms per call of
timak, its floor and the Redis peer (log scale; p99 as a thin whisker), so
the gaps the ratios quote can be seen at a glance. Needs matplotlib
(``pip install -e .[dev]``). ``--markdown`` prints the tables in
docs/benchmarks.md instead (no matplotlib needed): the cases, then the bytes;
``--compare A.json B.json ...`` prints ``x floor / x Redis`` of every case,
one column per run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "docs" / "benchmark-medians.png"
_SIDES = (("subject", "timak"), ("floor", "floor"), ("peer", "Redis"))


def plot(results: list[dict[str, Any]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not results:
        raise SystemExit("no results in the file")
    labels = [f"{r['name']}\n({r['backend']})" for r in results]
    fig, axes = plt.subplots(figsize=(max(8.0, 1.1 * len(results)), 5))
    width = 0.27
    for offset, (key, label) in enumerate(_SIDES):
        xs, p50, p99 = [], [], []
        for i, result in enumerate(results):
            side = result.get(key)
            if side:
                xs.append(i + (offset - 1) * width)
                p50.append(side["p50_ms"])
                p99.append(max(side["p99_ms"] - side["p50_ms"], 0.0))
        if xs:
            axes.bar(xs, p50, width, label=label, yerr=[[0.0] * len(p99), p99], capsize=2)
    axes.set_yscale("log")
    axes.set_ylabel("median ms per call (whisker: p99)")
    axes.set_xticks(range(len(results)))
    axes.set_xticklabels(labels, fontsize=6, rotation=30, ha="right")
    axes.set_title("timak beside its floor and Redis (same run, interleaved)")
    axes.grid(True, axis="y", which="major", alpha=0.3)
    axes.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _ratio(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _targets(result: dict[str, Any]) -> str:
    cells = []
    for t in result.get("targets", []):
        verdict = ("not measured" if t["met"] is None else "met" if t["met"]
                   else "**missed**")
        cells.append(f"{t['against']} ≤ {t['at_most']:g} {verdict}")
    return ", ".join(cells) or "-"


def markdown_table(results: list[dict[str, Any]]) -> str:
    """The results as a Markdown table: medians, p99, floors, Redis, ratios."""
    lines = [
        "| case | backend | timak ms | p99 | floor | floor ms | p99 | x floor | p99 x floor "
        "| cpu x floor | Redis ms | p99 | x Redis | p99 x Redis | cpu x Redis | targets |",
        "|---|---|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for r in results:
        subject, floor, peer = r["subject"], r["floor"], r.get("peer")
        lines.append(
            f"| {r['name']} | {r['backend']} | {_ms(subject['p50_ms'])} "
            f"| {_ms(subject['p99_ms'])} | {floor['name']} | {_ms(floor['p50_ms'])} "
            f"| {_ms(floor['p99_ms'])} | {_ratio(r['vs_floor'])} "
            f"| {_ratio(_p99_ratio(subject, floor))} | {_ratio(r['cpu_vs_floor'])} "
            f"| {_ms(peer['p50_ms'] if peer else None)} | {_ms(peer['p99_ms'] if peer else None)} "
            f"| {_ratio(r.get('vs_peer'))} | {_ratio(_p99_ratio(subject, peer))} "
            f"| {_ratio(r.get('cpu_vs_peer'))} | {_targets(r)} |"
        )
    return "\n".join(lines)


def _p99_ratio(subject: dict[str, Any], other: dict[str, Any] | None) -> float | None:
    """``subject p99 / other p99`` (older result files did not store it)."""
    if other is None:
        return None
    return float(subject["p99_ms"]) / max(float(other["p99_ms"]), 1e-9)


def bytes_table(figures: dict[str, Any] | None) -> str:
    """The bytes of one full timeline as a Markdown table ("" without any)."""
    if not figures:
        return ""

    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:,.0f}"

    verdict = ("not measured" if figures["met"] is None else "met" if figures["met"]
               else "**missed**")
    rows = [
        ("items as inline JSON (id, score, data)", cell(figures["payload_json"])),
        ("timak stored value", cell(figures["stored_value"])),
        ("SQLite used pages per timeline", cell(figures["sqlite_pages"])),
        ("Redis `MEMORY USAGE` of the sorted set", cell(figures["redis_memory_usage"])),
        ("Redis `DUMP` (serialized)", cell(figures["redis_dump"])),
        ("timak ÷ Redis `MEMORY USAGE`",
         f"{_ratio(figures['vs_redis'])} (target ≤ {figures['target']:g}: {verdict})"),
    ]
    head = [f"| bytes of one {figures['items']:,}-item timeline | |", "|---|--:|"]
    return "\n".join(head + [f"| {a} | {b} |" for a, b in rows])


def compare_table(documents: list[tuple[str, dict[str, Any]]]) -> str:
    """``x floor / x Redis`` of every case in several runs, one column per run."""
    cases: dict[tuple[str, str], dict[str, str]] = {}
    for label, document in documents:
        for r in document["results"]:
            cell = f"{_ratio(r['vs_floor'])} / {_ratio(r.get('vs_peer'))}"
            cases.setdefault((r["name"], r["backend"]), {})[label] = cell
    labels = [label for label, _ in documents]
    lines = [
        "| case | backend | " + " | ".join(labels) + " |",
        "|---|---|" + "--:|" * len(labels),
    ]
    for (name, backend), cells in cases.items():
        row = " | ".join(cells.get(label, "") for label in labels)
        lines.append(f"| {name} | {backend} | {row} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="+",
                        help="a file written by `timak bench --json` (several with --compare)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="PNG to write")
    parser.add_argument("--markdown", action="store_true",
                        help="print the results as Markdown tables instead of plotting")
    parser.add_argument("--compare", action="store_true",
                        help="print x floor / x Redis of every case, one column per file")
    args = parser.parse_args(argv)
    if args.compare:
        print(compare_table([(path.stem.removeprefix("results-"), json.loads(path.read_text()))
                             for path in args.results]))
        return 0
    document = json.loads(args.results[0].read_text())
    if args.markdown:
        print(markdown_table(document["results"]))
        table = bytes_table(document.get("bytes"))
        if table:
            print()
            print(table)
        return 0
    plot(document["results"], args.out)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
