"""`dcilab train --plot`: each policy's step and sync times against the planner's."""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


def train_figure(report: dict) -> Figure:
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    ax = fig.subplots()
    pred = report["predicted"]
    every = report["sync_every_steps"]
    # Amortised over the sync period, as the planner's step is (the same for K = 1).
    step_label = "step" if every == 1 else f"step (amortised over {every})"
    for name, p in report["policies"].items():
        steps = [s["step"] for s in p["steps"]]
        line, = ax.plot(steps, [s["amortized_step_s"] for s in p["steps"]], "o-",
                        label=f"{name}: {step_label}")
        ax.plot(steps, [s["sync_s"] for s in p["steps"]], "s:", color=line.get_color(),
                label=f"{name}: sync")
    ax.axhline(pred["step_time_s"], color="black", linestyle="--",
               label=f"planner: {step_label}")
    ax.axhline(pred["sync_s"], color="grey", linestyle="--", label="planner: sync")
    ax.set_xlabel("step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(f"seconds (time x{report['stretch']:.3g})")
    ax.set_title(f"{report['job']} on {report['fabric']}: {report['flows']} flows per sync")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(True, alpha=0.3)
    return fig
