"""Data, not code: this directory is installed as the package `dcilab.topologies` (see
pyproject.toml), so the commands find its files with importlib.resources."""
