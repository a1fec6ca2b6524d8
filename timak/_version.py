"""The package version, in a module of its own so that any layer can read it
without importing the package face (backends send it as their User-Agent)."""

__version__ = "1.0.0.dev0"
