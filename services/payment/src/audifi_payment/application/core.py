"""What every payment command group shares: one eventsourcing Application, one event store."""

from __future__ import annotations

from audifi_kit.eventstore import ServiceApplication


class PaymentCore(ServiceApplication):
    """The payment service's event store and the helpers its command groups share."""
