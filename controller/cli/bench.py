"""`dcilab bench`: argument parsing for the benchmark harnesses in `dcilab.bench`.

Each harness module has `add_arguments(parser)` and `run(args)`; it owns one flag
(`--api`, `--emulate`, ...) that selects it. Without such a flag the flow-level placement
bench runs. A new harness is one module in `bench/` and one line in `MODES`.
"""

from __future__ import annotations

import argparse
import functools

from ..bench import BenchError, admission, api, emulate, faults, flow, optical, training
from .failure import fail

# (the flag's attribute on args, the harness): the one whose flag is set runs.
MODES = (
    ("api", api),
    ("emulate", emulate),
    ("optical", optical),
    ("faults", faults),
    ("training", training),
    ("admission", admission),
)

# The benches that report targets, which --check-targets turns into the exit status.
TARGETED = ("api", "faults", "admission")


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
    owned = {"": _added(p, flow.add_arguments, shared=("max_stretch",))}  # --emulate's too
    for flag, harness in MODES:
        owned[flag] = _added(p, harness.add_arguments, shared=(flag,))
    p.set_defaults(run=run, bench_options=owned)


def _added(p, add_arguments, shared=()) -> list[tuple[str, str]]:
    """(dest, option) of each option `add_arguments` adds, but `shared`; each records in
    `args.bench_given` that it was given (one given at its default value, `--training
    --time-limit 10`, passed for not given when values were compared: a re-tester's)."""
    before = len(p._actions)
    add_arguments(p)
    owned = [a for a in p._actions[before:] if a.dest not in shared]
    for a in owned:
        a.__class__ = _recording(type(a))
    return [(a.dest, a.option_strings[0]) for a in owned]


@functools.cache
def _recording(action: type[argparse.Action]) -> type[argparse.Action]:
    """`action`, which also notes its dest in the namespace's `bench_given` when given."""
    class Recording(action):
        def __call__(self, parser, namespace, values, option_string=None):
            namespace.bench_given = getattr(namespace, "bench_given", frozenset()) | {self.dest}
            super().__call__(parser, namespace, values, option_string)
    return Recording


def run(args) -> int:
    given = getattr(args, "bench_given", frozenset())
    chosen = [(flag, harness) for flag, harness in MODES
              if getattr(args, flag, None) is not None and getattr(args, flag) is not False]
    if len(chosen) > 1:
        # One ran and the others were dropped unsaid; an outside tester's `--optical
        # --training` started an emulation it never asked for.
        return fail(args, "dcilab bench: one benchmark at a time: "
                    + ", ".join(f"--{flag}" for flag, _ in chosen) + " were given")
    mode = chosen[0][0] if chosen else ""
    if args.check_targets and mode not in TARGETED:
        return fail(args, f"dcilab bench: --check-targets judges "
                          f"{', '.join('--' + m for m in TARGETED)}; "
                    + (f"--{mode} has" if mode else "the placement bench has")
                    + " no target to miss")
    for flag, options in args.bench_options.items():
        stray = [option for dest, option in options if flag != mode and dest in given]
        if stray:               # ignored unsaid before (`--job X` ran the placement bench)
            return fail(args, f"dcilab bench: {', '.join(stray)} "
                        + ("belong" if len(stray) > 1 else "belongs")
                        + (f" to --{flag}" if flag
                           else " to the placement bench (no benchmark flag)")
                        + (f", not --{mode}" if mode else ""))
    try:
        return chosen[0][1].run(args) if chosen else flow.run(args)
    except BenchError as exc:
        return fail(args, str(exc), exc.status)
