"""Conversation store: the records behind the Conversations REST API and the monitor views."""

from __future__ import annotations

from hub.store.base import ConversationExists, ConversationStore
from hub.store.memory import MemoryConversationStore
from hub.store.models import SORT_FIELDS, ConversationFilter
from hub.store.redis_store import RedisConversationStore

__all__ = [
    "SORT_FIELDS",
    "ConversationExists",
    "ConversationFilter",
    "ConversationStore",
    "MemoryConversationStore",
    "RedisConversationStore",
]
