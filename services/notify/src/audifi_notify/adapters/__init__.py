"""Everything with I/O notify's application needs, each beside its in-memory twin.

`recipients`, `sealed_links` and `claims` are notify's tables beside its events (PostgreSQL;
dicts in memory); `smtp` hands a mail to a server (`InMemoryTransport` keeps it); `sink` is
the embedded mode's SMTP server; `seal_key` opens the links auth sealed to notify; `rendering`
reads the Jinja2 templates. `bootstrap` chooses between them.
"""
