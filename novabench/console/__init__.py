"""The terminal: live progress, log lines and tables."""
