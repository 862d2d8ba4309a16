"""AudiFi auth service. Identity: accounts, sessions, 2FA, wallets, MediaID preferences, erasure;
publishes the JWKS every service verifies against.
"""
