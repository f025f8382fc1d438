"""Data, not code: this directory is installed as the package `dcilab.jobs` (see
pyproject.toml), so the commands find its example training jobs with importlib.resources."""
