"""The auth service's eventsourcing application: one method per command."""

from audifi_kit.eventstore import ServiceApplication


class AuthApplication(ServiceApplication):
    """Identity: accounts, sessions, 2FA, wallets, MediaID preferences, erasure; publishes the JWKS
    every service verifies against.
    """
