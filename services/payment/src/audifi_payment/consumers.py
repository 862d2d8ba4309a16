"""Integration events in: nft's and coin's events that move money (an IPO purchase to settle, a
payout to split), each turned into a command on the application. None is consumed yet.
"""
