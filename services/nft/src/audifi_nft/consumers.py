"""Integration events in: payment's events that settle a purchase or an investment, each turned
into a command on the application. None is consumed yet.
"""
