"""The coin service's HTTP API (paths as the gateway forwards them, without `/api/v1`): artist
coins, staking, pools and the lottery (`/coins`, `/lottery/...`). No route is built yet: the
gateway answers 404 in the error envelope.
"""
