"""Hub classes: methods declared with `@hub_method`, matched case-insensitively like .NET."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def hub_method(name: str | None = None) -> Callable[[F], F]:
    def mark(fn: F) -> F:
        fn.__hub_method__ = name or fn.__name__  # type: ignore[attr-defined]
        return fn

    return mark


class HubError(Exception):
    """Like .NET's HubException: its message reaches the client even with detailed errors off."""


class Hub:
    """Subclass and mark methods with `@hub_method()`; one instance per connection."""

    #: The public connection id (`Context.ConnectionId`); the secret token never reaches hub code.
    connection_id: str = ""

    @classmethod
    def method_table(cls) -> dict[str, Callable[..., Awaitable[Any] | Any]]:
        table: dict[str, Callable[..., Awaitable[Any] | Any]] = {}
        for _, member in inspect.getmembers(cls, predicate=inspect.isfunction):
            name = getattr(member, "__hub_method__", None)
            if name is not None:
                table[name.lower()] = member
        return table
