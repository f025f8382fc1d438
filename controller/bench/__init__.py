"""Benchmark harnesses behind `dcilab bench` (each: `add_arguments(parser)`, `run(args)`)."""
