"""Hub classes: methods declared with `@hub_method`, matched case-insensitively like .NET.

One hub instance serves one connection. Inside a method, `self.context` is the connection (id, user,
request headers and cookies, items), `self.clients` sends to others and `self.groups` manages groups.
Sends are synchronous: they queue pre-encoded frames and never wait for a slow client.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from hub.signalr.clients import GroupManager, HubClients
    from hub.signalr.context import HubConnectionContext

F = TypeVar("F", bound=Callable[..., Any])


def hub_method(name: str | None = None, *, requires: str | None = None) -> Callable[[F], F]:
    """Expose a method to clients as `name`; `requires` is checked with `Hub.authorize` before each call."""

    def mark(fn: F) -> F:
        fn.__hub_method__ = (name or fn.__name__, requires)  # type: ignore[attr-defined]
        return fn

    return mark


@dataclass(frozen=True, slots=True)
class ReplyThen:
    """Return this from a hub method to run `then()` right after its Completion is queued (e.g. to release
    live events held back until a snapshot reply has gone out, so the client sees the snapshot first)."""

    result: Any
    then: Callable[[], None]


class HubError(Exception):
    """Like .NET's HubException: its message reaches the client even with detailed errors off."""


@dataclass(frozen=True, slots=True)
class MethodInfo:
    name: str
    fn: Callable[..., Any]
    streaming: bool  # an async generator: answers a StreamInvocation with StreamItems
    parameters: int  # every parameter but self, uploads included
    required: int  # parameters without a default value
    uploads: tuple[int, ...]  # indexes of parameters that are client-to-server streams
    void: bool  # returns None: the Completion carries no result
    requires: str | None


def _is_upload(annotation: Any) -> bool:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    return isinstance(text, str) and text.startswith("UploadStream")


def _describe(name: str, requires: str | None, fn: Callable[..., Any]) -> MethodInfo:
    params = list(inspect.signature(fn).parameters.values())[1:]
    uploads = tuple(i for i, p in enumerate(params) if _is_upload(p.annotation))
    returns = inspect.signature(fn).return_annotation
    return MethodInfo(
        name=name,
        fn=fn,
        streaming=inspect.isasyncgenfunction(fn),
        parameters=len(params),
        required=sum(1 for p in params if p.default is inspect.Parameter.empty),
        uploads=uploads,
        void=returns in (None, "None"),
        requires=requires,
    )


class Hub:
    """Subclass and mark methods with `@hub_method()`; one instance per connection."""

    context: HubConnectionContext
    clients: HubClients
    groups: GroupManager
    _methods: dict[str, MethodInfo] | None = None

    @property
    def connection_id(self) -> str:
        """The public connection id (`Context.ConnectionId`); the secret token never reaches hub code."""
        return self.context.connection_id

    @classmethod
    def method_table(cls) -> dict[str, MethodInfo]:
        table = cls.__dict__.get("_methods")
        if table is None:
            table = {}
            for _, member in inspect.getmembers(cls, predicate=inspect.isfunction):
                mark = getattr(member, "__hub_method__", None)
                if mark is not None:
                    table[mark[0].lower()] = _describe(mark[0], mark[1], member)
            cls._methods = table
        return table

    def authorize(self, method: MethodInfo) -> bool:
        """Whether this connection's user may call `method` (default: checks `user.has(method.requires)`)."""
        if method.requires is None:
            return True
        user = self.context.user
        has = getattr(user, "has", None)
        return bool(has is not None and has(method.requires))

    async def on_connected(self) -> None:
        """After the handshake. Raise to refuse the connection (Close with allowReconnect false)."""

    async def on_disconnected(self, error: BaseException | None) -> None:
        """Once, when the connection ends (not when a stateful-reconnect WebSocket drops and comes back)."""


HubFactory = Callable[[], Hub]
AsyncOrSync = Awaitable[Any] | Any
