"""The coin service's read models, fed from its own notification log: coins, stakes, pools and
lottery rounds as clients list them. None is built yet.
"""
