"""The nft service's aggregates and rules: plain Python, no I/O, no framework.

Will hold Master, Ipo, Holding, Distribution, FundingProject with its Milestones, and
ContentItem; none is built yet.
"""
