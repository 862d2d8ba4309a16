"""The vstudio service's aggregates and rules: plain Python, no I/O, no framework.

Will hold StudioSession (its decisions, votes and the master lock); none is built yet.
"""
