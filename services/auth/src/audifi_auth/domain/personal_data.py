"""Which event fields name a person, and whose they are (crypto-shredding, ARCHITECTURE §9).

An event class lists its personal fields in `personal_data` and says in `data_subject` which
attribute holds the account they belong to. The event store seals those fields with that
account's key before writing and opens them when reading; once the key is deleted (erasure)
they read as None. The domain itself only ever sees plain values.
"""

from __future__ import annotations

from typing import ClassVar


class CarriesPersonalData:
    personal_data: ClassVar[tuple[str, ...]] = ()
    data_subject: ClassVar[str] = "originator_id"
