"""AudiFi nft service. Masters, IPOs, share holdings, distributions, funding projects and
milestones, content.
"""
