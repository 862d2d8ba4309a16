from audifi_kit.bus.base import (
    EXCHANGE,
    Bus,
    Delivery,
    Handler,
    PublishError,
    QueueSpec,
    Subscription,
    parking_queue,
    retry_queue,
)

__all__ = [
    "EXCHANGE",
    "Bus",
    "Delivery",
    "Handler",
    "PublishError",
    "QueueSpec",
    "Subscription",
    "parking_queue",
    "retry_queue",
]
