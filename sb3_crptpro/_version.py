"""Single source of the package version (read by pyproject and recorded in datasets/artifacts)."""

__version__ = "0.2.0"
