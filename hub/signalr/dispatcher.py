"""What a connection's incoming messages do: invocations run in order, one at a time (.NET's
`MaximumParallelInvocationsPerClient` = 1), streams run in the background once started; completions and
stream items for uploads and client results are routed at once."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import deque
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from hub.signalr.hub import Hub, HubError, MethodInfo, ReplyThen
from hub.signalr.streams import UploadStream
from protocol import (
    CancelInvocationMessage,
    CloseMessage,
    CompletionMessage,
    InvocationMessage,
    ProtocolError,
    StreamInvocationMessage,
    StreamItemMessage,
)
from protocol.messages import AckMessage, HubMessage, PingMessage, SequenceMessage, is_trackable

if TYPE_CHECKING:
    from hub.signalr.context import HubConnectionContext

log = logging.getLogger("hub.signalr")

MAX_QUEUED_INVOCATIONS = 64
"""Invocations waiting for their turn on one connection; past it, reading from the client waits."""
MAX_STREAMS = 100
"""Server-to-client plus client-to-server streams open at once on one connection."""

Invocation = InvocationMessage | StreamInvocationMessage


def _failure_text(target: str, exc: BaseException, detailed: bool) -> str:
    text = f"An unexpected error occurred invoking '{target}' on the server."
    if isinstance(exc, HubError):
        return f"{text} HubException: {exc}"
    if detailed:
        return f"{text} {type(exc).__name__}: {exc}"
    return text


class Dispatcher:
    def __init__(self, connection: HubConnectionContext, hub: Hub, detailed_errors: bool) -> None:
        self.connection = connection
        self.hub = hub
        self.methods = type(hub).method_table()
        self.detailed = detailed_errors
        self.uploads: dict[str, UploadStream[Any]] = {}
        self.streams: dict[str, asyncio.Task[None]] = {}
        # Invocations waiting for their turn, and the task running them: both exist only while there is work
        # (most connections are idle monitors; a Queue and a parked task cost ~4 KB each).
        self._pending: deque[tuple[Invocation, list[UploadStream[Any] | None]]] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._room: asyncio.Future[None] | None = None  # the reader, waiting for a place in a full `_pending`
        self._stopped = False

    async def handle(self, message: HubMessage) -> bool:
        """Act on one message; False when the client closed the connection."""
        connection = self.connection
        inbound = connection.inbound
        if inbound is not None and is_trackable(message) and not inbound.accept():
            return True  # already processed before a reconnect
        if isinstance(message, PingMessage):
            connection.ping_received = True
        elif isinstance(message, InvocationMessage | StreamInvocationMessage):
            await self._enqueue(message)
        elif isinstance(message, StreamItemMessage):
            upload = self.uploads.get(message.invocation_id)
            if upload is not None:
                await upload.push(message.item)
        elif isinstance(message, CompletionMessage):
            upload = self.uploads.pop(message.invocation_id, None)
            if upload is not None:
                upload.complete(message.error)
            elif not connection.complete_client_result(message.invocation_id, message.error, message.result):
                log.debug("connection %s: completion for unknown id %s", connection.connection_id, message.invocation_id)
        elif isinstance(message, CancelInvocationMessage):
            task = self.streams.get(message.invocation_id)
            if task is not None:
                task.cancel()
        elif isinstance(message, AckMessage):
            connection.ack(message.sequence_id)
        elif isinstance(message, SequenceMessage):
            if inbound is None:
                raise ProtocolError("Sequence message received on a connection without stateful reconnect.")
            inbound.reset(message.sequence_id)
        elif isinstance(message, CloseMessage):
            return False
        return True

    def _open_uploads(self, message: Invocation) -> list[UploadStream[Any] | None]:
        """Uploads exist from the moment their invocation arrives: their items may come before it runs."""
        opened: list[UploadStream[Any] | None] = []
        for stream_id in message.stream_ids:
            if stream_id in self.uploads or len(self.uploads) + len(self.streams) >= MAX_STREAMS:
                opened.append(None)  # reported when the invocation runs
                continue
            upload: UploadStream[Any] = UploadStream()
            self.uploads[stream_id] = upload
            opened.append(upload)
        return opened

    async def _enqueue(self, message: Invocation) -> None:
        loop = asyncio.get_running_loop()
        while self._pending is not None and len(self._pending) >= MAX_QUEUED_INVOCATIONS:
            room = self._room = loop.create_future()  # one reader per connection: one waiter at most
            await room  # reading from the client waits: back-pressure to the sender
        if self._stopped:
            return
        uploads = self._open_uploads(message)
        if self._pending is None:
            self._pending = deque()
        self._pending.append((message, uploads))
        if self._worker is None:
            self._worker = loop.create_task(self._run())

    async def _run(self) -> None:
        try:
            while self._pending:
                message, uploads = self._pending.popleft()
                room, self._room = self._room, None
                if room is not None and not room.done():
                    room.set_result(None)
                try:
                    if isinstance(message, StreamInvocationMessage):
                        self._start_stream(message, uploads)
                    else:
                        await self._invoke(message, uploads)
                except Exception:
                    log.exception("connection %s: dispatch of %s failed", self.connection.connection_id, message.target)
        finally:
            self._worker = None
            if not self._pending:
                self._pending = None

    def _reply(self, message: CompletionMessage) -> None:
        self.connection.send_message(message)

    def _bind(self, message: Invocation, method: MethodInfo, uploads: list[UploadStream[Any] | None]) -> list[Any]:
        """The call's arguments with upload streams put in place; raises HubError or TypeError."""
        if len(message.stream_ids) != len(method.uploads):
            raise HubError(f"Client sent {len(message.stream_ids)} stream(s), Hub method expects {len(method.uploads)}.")
        args = list(message.arguments)
        given, streams = len(args), len(method.uploads)
        if not method.required <= given + streams <= method.parameters:
            expected = method.required - streams if given + streams < method.required else method.parameters - streams
            raise TypeError(f"Invocation provides {given} argument(s) but target expects {expected}.")
        for index, stream_id, upload in zip(method.uploads, message.stream_ids, uploads, strict=True):
            if upload is None:
                raise HubError(f"Invocation ID '{stream_id}' is already in use.")
            args.insert(index, upload)
        return args

    def _lookup(self, message: Invocation, streaming: bool) -> MethodInfo | str:
        method = self.methods.get(message.target.lower())
        if method is None:
            return f"Unknown hub method '{message.target}'"
        if method.streaming and not streaming:
            return f"The client attempted to invoke the streaming '{message.target}' method with a non-streaming invocation."
        if streaming and not method.streaming:
            return f"The client attempted to invoke the non-streaming '{message.target}' method with a streaming invocation."
        if not self.hub.authorize(method):
            return f"Failed to invoke '{message.target}' because user is unauthorized"
        return method

    def _drop_uploads(self, message: Invocation) -> None:
        for stream_id in message.stream_ids:
            upload = self.uploads.pop(stream_id, None)
            if upload is not None:
                upload.complete()

    def _prepare(
        self, message: Invocation, streaming: bool, uploads: list[UploadStream[Any] | None]
    ) -> tuple[MethodInfo, list[Any]] | str:
        """The method and its bound arguments, or the error text of the Completion to send."""
        found = self._lookup(message, streaming)
        if isinstance(found, str):
            return found
        try:
            return found, self._bind(message, found, uploads)
        except TypeError as exc:  # .NET: an InvalidDataException from the argument binder
            text = f"Failed to invoke '{message.target}' due to an error on the server."
            return f"{text} InvalidDataException: {exc}" if self.detailed else text
        except HubError as exc:
            return _failure_text(message.target, exc, self.detailed)

    def _background(self, key: str, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self.streams[key] = task

        def forget(_: asyncio.Task[None]) -> None:
            if self.streams.get(key) is task:
                del self.streams[key]

        task.add_done_callback(forget)

    async def _invoke(self, message: InvocationMessage, uploads: list[UploadStream[Any] | None]) -> None:
        invocation_id = message.invocation_id
        prepared = self._prepare(message, False, uploads)
        if isinstance(prepared, str):
            self._drop_uploads(message)
            if invocation_id is not None:
                self._reply(CompletionMessage.with_error(invocation_id, prepared))
            return
        method, args = prepared
        if message.stream_ids:
            # A method reading uploads runs in the background, or its own StreamItems could never arrive.
            self._background(invocation_id or f"upload:{message.stream_ids[0]}", self._call(message, method, args))
        else:
            await self._call(message, method, args)

    async def _call(self, message: InvocationMessage, method: MethodInfo, args: list[Any]) -> None:
        invocation_id = message.invocation_id
        try:
            result = method.fn(self.hub, *args)
            if inspect.isawaitable(result):
                result = await result
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not isinstance(exc, HubError):
                log.exception("hub method %s failed", message.target)
            if invocation_id is not None:
                self._reply(CompletionMessage.with_error(invocation_id, _failure_text(message.target, exc, self.detailed)))
            return
        finally:
            self._drop_uploads(message)
        then = None
        if isinstance(result, ReplyThen):
            result, then = result.result, result.then
        if invocation_id is not None:
            self._reply(CompletionMessage(invocation_id) if method.void else CompletionMessage.with_result(invocation_id, result))
        if then is not None:
            then()

    def _start_stream(self, message: StreamInvocationMessage, uploads: list[UploadStream[Any] | None]) -> None:
        invocation_id = message.invocation_id
        if invocation_id in self.streams:
            self._reply(CompletionMessage.with_error(invocation_id, f"Invocation ID '{invocation_id}' is already in use."))
            return
        prepared = self._prepare(message, True, uploads)
        if isinstance(prepared, str):
            self._drop_uploads(message)
            self._reply(CompletionMessage.with_error(invocation_id, prepared))
            return
        self._background(invocation_id, self._stream(message, *prepared))

    async def _stream(self, message: StreamInvocationMessage, method: MethodInfo, args: list[Any]) -> None:
        invocation_id = message.invocation_id
        connection = self.connection
        try:
            iterator = method.fn(self.hub, *args)
            started = False
            try:
                async for item in iterator:
                    started = True
                    connection.send_message(StreamItemMessage(invocation_id, item))
                reply = CompletionMessage(invocation_id)
            except asyncio.CancelledError:
                await iterator.aclose()
                reply = CompletionMessage(invocation_id)
            except Exception as exc:
                if not isinstance(exc, HubError):
                    log.exception("hub stream %s failed", message.target)
                if started:
                    text = "An error occurred on the server while streaming results."
                    if self.detailed or isinstance(exc, HubError):
                        text += f" {'HubException' if isinstance(exc, HubError) else type(exc).__name__}: {exc}"
                else:
                    text = _failure_text(message.target, exc, self.detailed)
                reply = CompletionMessage.with_error(invocation_id, text)
            self._reply(reply)
        finally:
            self._drop_uploads(message)

    def stop(self) -> None:
        self._stopped = True
        self._pending = None
        if self._worker is not None:
            self._worker.cancel()
        if self._room is not None and not self._room.done():
            self._room.set_result(None)
        for task in list(self.streams.values()):
            task.cancel()
        for upload in self.uploads.values():
            upload.complete("Connection closed.")
        self.uploads.clear()
