"""The nft service's read models, fed from its own notification log: masters, IPOs, holdings and
projects as clients list them. None is built yet.
"""
