"""The package version, importable from any layer without loading the package's API."""

__version__ = "0.2.0"
