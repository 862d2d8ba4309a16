"""Integration events out: the mapping of this service's public domain events to `nft.*` events
(`nft.master.registered`, `nft.ipo.launched`, `nft.share.minted`) in the published language.
Nothing is published yet.
"""
