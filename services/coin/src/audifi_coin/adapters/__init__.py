"""Everything with I/O the coin application needs, each with an in-memory twin that
`bootstrap.in_memory()` injects: the chain (`PlatformChain`: ArtistCoinFactory, Staking, Pool,
Lottery) and the randomness a drawing needs. None is needed yet.
"""
