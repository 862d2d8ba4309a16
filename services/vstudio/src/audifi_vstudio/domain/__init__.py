"""The vstudio service's aggregates and rules: plain Python, no I/O, no framework."""
