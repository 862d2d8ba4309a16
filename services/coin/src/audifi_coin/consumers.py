"""Integration events in: payment's and nft's events a coin or a lottery reacts to (e.g. a settled
checkout buying tickets), each turned into a command on the application. None is consumed yet.
"""
