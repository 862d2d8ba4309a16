"""The coin service's aggregates and rules: plain Python, no I/O, no framework."""
