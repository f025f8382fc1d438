"""Benchmark harnesses behind `dcilab bench` (each: `add_arguments(parser)`, `run(args)`)."""

EXIT_TARGET_MISSED = 1


def verdict(args, met: bool) -> int:
    """The exit status of a harness that ran: with --check-targets, 1 if a target was
    missed (for a script or CI job that gates on them); otherwise 0, the figures said."""
    return EXIT_TARGET_MISSED if getattr(args, "check_targets", False) and not met else 0
