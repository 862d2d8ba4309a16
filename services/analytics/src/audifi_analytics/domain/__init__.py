"""The analytics service's aggregates and rules: plain Python, no I/O, no framework.

Will hold Campaign and Anomaly (everything else here is a read model); none is built yet.
"""
