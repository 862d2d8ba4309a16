"""Everything with I/O the nft application needs, each with an in-memory twin that
`bootstrap.in_memory()` injects: the chain (`PlatformChain`: MasterShares, RevenueDistributor,
MilestoneEscrow) and file storage for the content locker. None is needed yet.
"""
