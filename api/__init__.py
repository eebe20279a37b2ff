"""The web console, HTTP API and command line: the one package that reads all others."""

__version__ = "0.1.0"
