"""novabench's version: stored with every run and shown on every page."""

__version__ = "0.1.0"
