"""The coin service's aggregates and rules: plain Python, no I/O, no framework.

Will hold ArtistCoin, StakePosition, Pool and LotteryRound; none is built yet.
"""
