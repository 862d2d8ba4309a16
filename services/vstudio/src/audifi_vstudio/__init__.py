"""AudiFi vstudio service. V Studio: live sessions, decisions, votes and the master lock, with
their WebSocket rooms.
"""
