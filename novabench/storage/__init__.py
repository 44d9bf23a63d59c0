"""The DuckDB history: schema and migrations, the run journal, reads, writes and export."""
