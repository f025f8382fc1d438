"""`dcilab bench`: argument parsing for the benchmark harnesses in `dcilab.bench`.

Each harness module has `add_arguments(parser)` and `run(args)`; it owns one flag
(`--api`, `--emulate`, ...) that selects it. Without such a flag the flow-level placement
bench runs. A new harness is one module in `bench/` and one line in `MODES`.
"""

from __future__ import annotations

from ..bench import admission, api, emulate, faults, flow, optical, training

# (the flag's attribute on args, the harness); the first whose flag is set runs.
MODES = (
    ("api", api),
    ("emulate", emulate),
    ("optical", optical),
    ("faults", faults),
    ("training", training),
    ("admission", admission),
)


def register(sub) -> None:
    p = sub.add_parser(
        "bench", help="benchmarks: placement policies (default), --api, --emulate FILE, ...",
        description="For each scenario (the repository topologies and a generated 16-site "
                    "fabric, x all-reduce / skewed / elephants-and-mice traffic) and each "
                    "policy: maximum link utilization, its ratio to the optimum unsplittable "
                    "placement (exact MILP, or an LP lower bound when the MILP runs out of "
                    "time), completion time under max-min fair sharing, and placement time "
                    "per elephant. Then the time to place 1000 elephants one by one on the "
                    "large fabric. The option groups below select other benchmarks.")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--check-targets", action="store_true",
                   help="exit 1 if a target the bench reports (--api, --faults, --admission) "
                        "is missed; without it a bench that ran exits 0 either way")
    flow.add_arguments(p)
    for _, harness in MODES:
        harness.add_arguments(p)
    p.set_defaults(run=run)


def run(args) -> int:
    for flag, harness in MODES:
        if getattr(args, flag, None) is not None and getattr(args, flag) is not False:
            return harness.run(args)
    return flow.run(args)
