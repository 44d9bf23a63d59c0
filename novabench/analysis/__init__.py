"""What the stored results say: figures, statistics, checks, sweeps, comparisons."""
