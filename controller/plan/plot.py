"""The sensitivity of a plan as a figure: step time and utilization against distance and
against capacity. Builds a matplotlib Figure without pyplot (no global state, no I/O);
the caller saves it."""

from __future__ import annotations

from matplotlib.figure import Figure

from .planner import JobPlan


def sensitivity_figure(plan: JobPlan) -> Figure:
    sens = plan.sensitivity
    target = plan.job.spec.target_compute_utilization
    # Fixed margins (the figure's size and labels are fixed): the constrained layout drew
    # the figure twice, 0.2-0.4 s of a 0.6 s save.
    fig = Figure(figsize=(11, 4.6))
    fig.subplots_adjust(left=0.055, right=0.945, wspace=0.38, top=0.9, bottom=0.24)
    fig.suptitle(f"{plan.job.name}: predicted compute utilization and step time "
                 f"(planned: {plan.prediction.step_time_s:.3f} s, "
                 f"{plan.prediction.compute_utilization:.1%})")
    panels = (("distance", "longest_km", "longest fibre route (km), planned wavelengths",
               True),
              ("capacity", "capacity_gbps", "total DCI capacity (Gb/s)", False))
    for ax, (key, x_key, label, log_x) in zip(fig.subplots(1, 2), panels):
        rows = sens[key]
        x = [r[x_key] for r in rows]
        ax.plot(x, [100 * r["compute_utilization"] for r in rows], "o-", color="tab:blue",
                label="compute utilization")
        ax.axhline(100 * target, color="tab:blue", linestyle=":", label="target")
        past = [r[x_key] for r in rows if r.get("beyond_dispersion_tolerance")]
        if past:
            # The text's starred rows: the planned modes do not tolerate that dispersion,
            # so these points count the latency only (an outside tester read them as fine).
            ax.axvspan(min(past), max(x), color="grey", alpha=0.15,
                       label="past the planned modes' dispersion tolerance")
        ax.set_xlabel(label)
        ax.set_ylabel("compute utilization (%)", color="tab:blue")
        if log_x:
            ax.set_xscale("log")
        planned = next(r for r in rows if r["factor"] == 1.0)
        ax.axvline(planned[x_key], color="grey", linestyle="--", linewidth=0.8)
        ax.annotate("planned", (planned[x_key], ax.get_ylim()[0]), textcoords="offset points",
                    xytext=(3, 3), color="grey", fontsize=8)
        right = ax.twinx()
        right.plot(x, [r["step_time_s"] for r in rows], "s--", color="tab:red",
                   label="step time")
        right.set_ylabel("step time (s)", color="tab:red")
        lines = ax.get_legend_handles_labels()
        more = right.get_legend_handles_labels()
        # Under the axes: "best" places it among the left axis' lines only, and it hid
        # the step-time curve of the twin axis (an outside tester).
        ax.legend(lines[0] + more[0], lines[1] + more[1], loc="upper center",
                  bbox_to_anchor=(0.5, -0.17), ncol=3, fontsize=8, frameon=False)
        ax.grid(True, alpha=0.3)
    return fig
