"""The broker between hub nodes and agent pipelines (voicehub-contract.md section 4, docs/broker.md)."""

from __future__ import annotations

from hub.broker.base import (
    BROKER_OUTAGE,
    DEFAULT_PREFIX,
    Broker,
    BrokerUnavailable,
    ConversationListener,
    History,
    Keys,
    Subscription,
)
from hub.broker.memory import MemoryBroker

__all__ = [
    "BROKER_OUTAGE",
    "DEFAULT_PREFIX",
    "Broker",
    "BrokerUnavailable",
    "ConversationListener",
    "History",
    "Keys",
    "MemoryBroker",
    "Subscription",
]

