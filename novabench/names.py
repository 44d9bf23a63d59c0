"""Names every layer shares, importable for nothing (no records, no pydantic)."""

# The host of the in-process llama.cpp engine: results and models are keyed by it like a URL.
EMBEDDED_HOST = "embedded"
# The mode of load sweeps; their requests are no repetitions of one measurement.
LOAD_MODE = "load"
