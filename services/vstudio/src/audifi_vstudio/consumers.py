"""Integration events in: nft's events a session depends on (the master it is about), each turned
into a command on the application. None is consumed yet.
"""
