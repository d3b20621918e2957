"""RedisPipe (hub/broker/redis_pipe.py) against a real redis-server: replies in order, scripts, errors, stalls,
restarts, cancelled callers, back-pressure, AUTH/SELECT and unix sockets."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator

import pytest
import redis

from hub.broker.base import BrokerUnavailable
from hub.broker.redis_pipe import PipeScript, RedisPipe
from tests.support.redis_server import RedisServer
from tests.support.timing import eventually, scaled, wait_for

ECHO_KEYS = PipeScript.of("return {KEYS[1], ARGV[1]}")


@contextlib.contextmanager
def stopped(server: RedisServer) -> Iterator[None]:
    """redis-server frozen (SIGSTOP): connections stay open, nothing is answered."""
    assert server.proc is not None
    server.proc.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        server.proc.send_signal(signal.SIGCONT)


def test_concurrent_commands_get_their_own_replies_in_order(redis_url: str) -> None:
    async def main() -> list[int]:
        pipe = RedisPipe(redis_url)
        try:
            return list(await asyncio.gather(*(pipe.execute("incr", "INCR", "pipe:n") for _ in range(2000))))
        finally:
            await pipe.close()

    assert asyncio.run(main()) == list(range(1, 2001))


def test_scripts_survive_a_flushed_script_cache(redis_url: str) -> None:
    async def main() -> None:
        pipe = RedisPipe(redis_url)
        try:
            assert await pipe.run_script("echo", ECHO_KEYS, ["k1"], [b"\x00\xff"]) == [b"k1", b"\x00\xff"]
            with redis.Redis.from_url(redis_url) as admin:
                admin.script_flush()
                assert admin.script_exists(ECHO_KEYS.sha.decode()) == [False]
            assert await pipe.run_script("echo", ECHO_KEYS, ["k2"], [7]) == [b"k2", b"7"]  # NOSCRIPT, then EVAL
        finally:
            await pipe.close()

    asyncio.run(main())


def test_an_error_reply_fails_only_its_command(redis_url: str) -> None:
    async def main() -> None:
        pipe = RedisPipe(redis_url)
        try:
            await pipe.execute("set", "SET", "pipe:text", "abc")
            results = await asyncio.gather(pipe.execute("incr", "INCR", "pipe:text"),
                                           pipe.execute("get", "GET", "pipe:text"), return_exceptions=True)
            assert isinstance(results[0], BrokerUnavailable)
            assert "Redis incr failed" in str(results[0]) and "not an integer" in str(results[0])
            assert results[1] == b"abc"
            assert await pipe.execute("ping", "PING") == b"PONG"
        finally:
            await pipe.close()

    asyncio.run(main())


def test_a_stalled_redis_fails_waiting_commands_then_the_pipe_recovers(fresh_redis: RedisServer) -> None:
    async def main() -> None:
        pipe = RedisPipe(fresh_redis.url, command_timeout=scaled(0.5))
        try:
            assert await pipe.execute("ping", "PING") == b"PONG"
            with stopped(fresh_redis):
                results = await wait_for(asyncio.gather(*(pipe.execute("ping", "PING") for _ in range(3)),
                                                        return_exceptions=True), 5)
            assert all(isinstance(r, BrokerUnavailable) and "no reply within" in str(r) for r in results), results
            assert await wait_for(pipe.execute("ping", "PING")) == b"PONG"  # a new connection
        finally:
            await pipe.close()

    asyncio.run(main())


def test_a_restarted_redis_is_reconnected_on_the_next_command(fresh_redis: RedisServer) -> None:
    async def main() -> None:
        pipe = RedisPipe(fresh_redis.url, connect_timeout=scaled(1))
        try:
            await pipe.execute("set", "SET", "k", "1")
            fresh_redis.stop()
            with pytest.raises(BrokerUnavailable, match="Redis get failed"):
                await wait_for(pipe.execute("get", "GET", "k"))
            with pytest.raises(BrokerUnavailable, match="cannot connect"):
                await wait_for(pipe.execute("get", "GET", "k"))
            fresh_redis.start()
            assert await wait_for(pipe.execute("set", "SET", "k", "2")) == b"OK"
            assert await pipe.execute("get", "GET", "k") == b"2"
        finally:
            await pipe.close()

    asyncio.run(main())


def test_a_cancelled_caller_does_not_shift_the_replies_of_others(fresh_redis: RedisServer) -> None:
    async def main() -> None:
        pipe = RedisPipe(fresh_redis.url, command_timeout=scaled(10))
        try:
            await pipe.execute("ping", "PING")
            with stopped(fresh_redis):
                tasks = [asyncio.create_task(pipe.execute("echo", "ECHO", word)) for word in ("a", "b", "c")]
                await asyncio.sleep(0)  # all three are written before any reply can come
                await asyncio.sleep(0)
                tasks[1].cancel()
            assert await wait_for(tasks[0]) == b"a"
            assert await wait_for(tasks[2]) == b"c"
            assert tasks[1].cancelled()
            assert await pipe.execute("echo", "ECHO", "d") == b"d"
        finally:
            await pipe.close()

    asyncio.run(main())


def test_commands_beyond_max_pending_wait_for_room(fresh_redis: RedisServer) -> None:
    async def main() -> None:
        pipe = RedisPipe(fresh_redis.url, command_timeout=scaled(10), max_pending=4)
        try:
            await pipe.execute("ping", "PING")
            link = pipe._link
            assert link is not None
            with stopped(fresh_redis):
                tasks = [asyncio.create_task(pipe.execute("incr", "INCR", "n")) for _ in range(6)]
                await eventually(lambda: len(link.waiting) == 4, 5, "four commands in flight")
                await asyncio.sleep(0.05)
                assert len(link.waiting) == 4 and len(link.room) == 2 and not any(t.done() for t in tasks)
            assert sorted(await wait_for(asyncio.gather(*tasks))) == [1, 2, 3, 4, 5, 6]
        finally:
            await pipe.close()

    asyncio.run(main())


def test_a_full_pipe_gives_up_after_the_command_timeout(fresh_redis: RedisServer) -> None:
    async def main() -> None:
        pipe = RedisPipe(fresh_redis.url, command_timeout=scaled(0.5), max_pending=1)
        try:
            await pipe.execute("ping", "PING")
            with stopped(fresh_redis):
                results = await wait_for(asyncio.gather(pipe.execute("a", "PING"), pipe.execute("b", "PING"),
                                                        return_exceptions=True), 5)
            assert all(isinstance(r, BrokerUnavailable) for r in results), results
            assert await wait_for(pipe.execute("ping", "PING")) == b"PONG"
        finally:
            await pipe.close()

    asyncio.run(main())


def test_password_user_and_database_from_the_url() -> None:
    server = RedisServer("--requirepass", "s3cret")
    server.start()
    try:
        async def main() -> None:
            pipe = RedisPipe(f"redis://:s3cret@127.0.0.1:{server.port}/3")
            wrong = RedisPipe(f"redis://:nope@127.0.0.1:{server.port}/0")
            try:
                assert await pipe.execute("set", "SET", "where", "db3") == b"OK"
                with pytest.raises(BrokerUnavailable, match="refused the connection"):
                    await wrong.execute("ping", "PING")
            finally:
                await pipe.close()
                await wrong.close()

        asyncio.run(main())
        with redis.Redis(port=server.port, password="s3cret", db=3) as admin:
            assert admin.get("where") == b"db3"
    finally:
        server.stop()


def test_unix_socket_url() -> None:
    server = RedisServer()
    sock = server.dir / "redis.sock"
    server.extra_args += ["--unixsocket", str(sock), "--unixsocketperm", "700"]
    server.start()
    try:
        async def main() -> bytes:
            pipe = RedisPipe(f"unix://{sock}?db=2")
            try:
                await pipe.execute("set", "SET", "via", "unix")
                result: bytes = await pipe.execute("get", "GET", "via")
                return result
            finally:
                await pipe.close()

        assert asyncio.run(main()) == b"unix"
        with redis.Redis(port=server.port, db=2) as admin:
            assert admin.get("via") == b"unix"
    finally:
        server.stop()


def test_other_schemes_are_refused_with_a_clear_error() -> None:
    assert not RedisPipe.supports("rediss://127.0.0.1:6379/0")
    with pytest.raises(ValueError, match="not rediss"):
        RedisPipe("rediss://127.0.0.1:6379/0")


def test_a_closed_pipe_refuses_commands(redis_url: str) -> None:
    async def main() -> None:
        pipe = RedisPipe(redis_url)
        await pipe.execute("ping", "PING")
        await pipe.close()
        with pytest.raises(BrokerUnavailable, match="closed"):
            await pipe.execute("ping", "PING")

    asyncio.run(main())


@pytest.mark.parametrize("pipelined", [True, False], ids=["pipelined", "pool"])
def test_the_broker_publishes_the_same_through_the_pipe_and_the_pool(redis_url: str, pipelined: bool) -> None:
    """RedisBroker's frames and events, over the pipe (default) or redis-py's pool: same seqs, history, live order."""
    from hub.broker.redis_broker import RedisBroker
    from tests.broker_rig import Recorder

    async def main() -> None:
        broker = RedisBroker(redis_url, pipelined=pipelined)
        await broker.start()
        try:
            assert (broker._pipe is not None) is pipelined
            heard = Recorder()
            subscription = broker.subscribe_conversation("conv_p", heard)
            await wait_for(subscription.ready())
            seqs = []
            for n in range(20):
                await broker.publish_audio("conv_p", {"conversationId": "conv_p", "frame": n, "data": bytes([n]) * 960})
                seqs.append(await broker.publish_event("conv_p", {"type": "transcript", "n": n}))
            assert seqs == list(range(1, 21))
            await eventually(lambda: len(heard.events) == 20 and len(heard.frames) == 20, 5, "live delivery")
            assert [e["n"] for e in heard.events] == list(range(20))
            assert [f["data"] for f in heard.frames] == [bytes([n]) * 960 for n in range(20)]
            history = await broker.history("conv_p", 0)
            assert [e["seq"] for e in history.events] == seqs and history.last_seq == 20
            assert len(await broker.recent_audio("conv_p", 0)) == 20
            subscription.close()
        finally:
            await broker.close()

    asyncio.run(main())
