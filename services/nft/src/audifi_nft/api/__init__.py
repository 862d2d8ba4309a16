"""The nft service's HTTP API (paths as the gateway forwards them, without `/api/v1`): for now
`/chain` (`api.chain`), what a client needs to use the platform's contracts itself.
"""
