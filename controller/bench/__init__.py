"""Benchmark harnesses behind `dcilab bench` (each: `add_arguments(parser)`, `run(args)`)."""

EXIT_TARGET_MISSED = 1


class BenchError(Exception):
    """A bench that cannot run as asked (status 2) or failed as it ran (1): said by
    `dcilab bench` on stderr, and under --json as the failure answer on stdout too (an
    ML-infra tester's `bench --training --json` printed nothing there)."""

    def __init__(self, message: str, status: int = 2):
        super().__init__(message)
        self.status = status


def verdict(args, met: bool) -> int:
    """The exit status of a harness that ran: with --check-targets, 1 if a target was
    missed (for a script or CI job that gates on them); otherwise 0, the figures said."""
    return EXIT_TARGET_MISSED if getattr(args, "check_targets", False) and not met else 0
