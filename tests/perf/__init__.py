"""Measurement-accuracy benchmark (`make perf`): novabench's timings against the double's truth.

The Ollama double runs in a subprocess on its own core and reports when it really wrote each
token (GET /_double/timings); the clients stream from it in this process, and each one's
measured TTFT, ITL and tokens/s are compared with that ground truth, next to its CPU cost per
token. Entry point: python -m tests.perf --help.
"""
