"""Integration events in: every service's integration events that analytics counts, each turned
into a command on the application. None is consumed yet.
"""
