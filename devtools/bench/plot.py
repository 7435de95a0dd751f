"""The bench's chart: queue-side throughput against Graph latency, the bridge beside the naive handler
(and beside the baseline commit's bridge, when one was measured)."""

from __future__ import annotations

from pathlib import Path

from devtools.bench.measure import BASELINE, BRIDGE, NAIVE, NEW, UPDATE, Results

_STYLES = {
    (BRIDGE, NEW): ("tab:blue", "-", "bridge, new activities"),
    (BRIDGE, UPDATE): ("tab:blue", "--", "bridge, updates"),
    (BASELINE, NEW): ("tab:green", "-", "baseline {commit}, new activities"),
    (BASELINE, UPDATE): ("tab:green", "--", "baseline {commit}, updates"),
    (NAIVE, NEW): ("tab:orange", "-", "naive handler, new activities"),
    (NAIVE, UPDATE): ("tab:orange", "--", "naive handler, updates"),
}


def draw(results: Results, path: Path, about: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7.5, 4.5), dpi=110)
    for (system, kind), (color, line, label) in _STYLES.items():
        points = sorted(
            (p.latency_ms, p.rate) for p in results.phases if (p.system, p.kind) == (system, kind)
        )
        if points:
            xs, ys = zip(*points, strict=True)
            commit = (results.baseline or "").split(" ")[0]
            axes.plot(xs, ys, color=color, linestyle=line, marker="o", label=label.format(commit=commit))
    axes.set_xticks(sorted({p.latency_ms for p in results.phases}))
    axes.set_xlabel("Graph latency injected by the sandbox (ms)")
    axes.set_ylabel("events per second")
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    axes.set_title(
        f"Queue side: bridge ({results.concurrency} messages at once) vs naive handler "
        f"({results.concurrency} concurrent requests)\n{results.started:%Y-%m-%d}, {about}",
        fontsize=8,
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
