"""The vstudio service's read models, fed from its own notification log: sessions, decisions and
vote tallies as clients read them. None is built yet.
"""
