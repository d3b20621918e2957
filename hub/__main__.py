"""`python -m hub`: the command line (voicehub-contract.md section 7). Every flag has a VOICEHUB_* variable."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from hub.config import HubConfig, env


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from hub.app import create_app
    from hub.http_timeouts import header_timeout_protocol
    from hub.signalr.transports.uvicorn_ws import LeanWebSocketProtocol

    _DrainingServer = _draining_server_class()

    config = HubConfig.from_env(host=args.host, port=args.port, redis_url=args.redis_url, agent=args.agent,
                                demo=args.demo, conformance=args.conformance or None, data_dir=args.data_dir,
                                drain_grace=args.drain_grace, cors_origins=_origins(args.cors_origins))
    app = create_app(config)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the demo callers' client: one line per request is noise
    mode = f"Redis at {config.redis_url}" if config.redis_url else "embedded in-memory broker and store"
    print(f"VoiceHub listening on http://{config.host}:{config.port} ({mode}; agent: {config.agent})", flush=True)
    print(f"  dashboard: http://{config.host}:{config.port}/dashboard   hub: /hubs/voice   REST: /api/v1", flush=True)
    server = _DrainingServer(uvicorn.Config(app, host=config.host, port=config.port, log_level=args.log_level,
                                            ws_max_size=1024 * 1024, ws_per_message_deflate=False,  # see docs/performance.md
                                            timeout_graceful_shutdown=int(config.drain_grace) + 5,
                                            http=header_timeout_protocol(config.header_timeout),  # slowloris
                                            ws=LeanWebSocketProtocol))  # uvicorn's, lighter per connection
    server.run()
    return 0


def _origins(raw: str | None) -> tuple[str, ...] | None:
    if raw is None:
        return None
    return tuple(o.strip() for o in raw.split(",") if o.strip())


def _draining_server_class() -> type:
    import asyncio
    import socket

    import uvicorn

    class DrainingServer(uvicorn.Server):
        """SIGTERM drains the hubs before uvicorn's own shutdown, which would otherwise close every WebSocket
        (code 1012) before the app could send `Close{allowReconnect: true}`: readyz answers 503, negotiate refuses,
        every client gets Close, and the node waits up to the drain grace for them to go."""

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            app: Any = self.config.app
            runtime = app.state.runtime
            await asyncio.gather(*(e.manager.drain(runtime.config.drain_grace) for e in runtime.endpoints))
            await super().shutdown(sockets)

    return DrainingServer


def _agent(args: argparse.Namespace) -> int:
    import asyncio

    from hub.agent.__main__ import main as agent_main

    if not args.redis_url:
        print("error: the agent process needs --redis-url (or VOICEHUB_REDIS_URL); without Redis, "
              "`serve` runs the echo agent in-process", file=sys.stderr)
        return 2
    asyncio.run(agent_main(args.redis_url, env("prefix", "voicehub") or "voicehub", args.script))
    return 0


def _watch(args: argparse.Namespace) -> int:
    from hub.client.watch_cli import watch_main

    return watch_main(args)


def _simulate(args: argparse.Namespace) -> int:
    from hub.simulate.cli import simulate_main

    return simulate_main(args)


def _keys(argv: list[str]) -> int:
    from hub.auth.cli import keys_cli

    redis_url = env("redis-url")
    for i, arg in enumerate(argv):
        if arg == "--redis-url" and i + 1 < len(argv):
            redis_url = argv[i + 1]
            argv = argv[:i] + argv[i + 2:]
            break
    return keys_cli(argv, redis_url, env("prefix", "voicehub") or "voicehub")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["keys"]:
        return _keys(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m hub")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the hub")
    serve.add_argument("--host", default=env("host", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(env("port", "8000") or "8000"))
    serve.add_argument("--redis-url", default=env("redis-url"))
    serve.add_argument("--agent", choices=("echo", "none"), default=env("agent"),
                       help="in-process reference agent (default: echo without Redis, none with it)")
    serve.add_argument("--demo", type=int, default=int(env("demo", "0") or "0"), help="run N simulated callers")
    serve.add_argument("--data-dir", default=env("data-dir", "data"))
    serve.add_argument("--conformance", action="store_true", default=env("conformance", "") in ("1", "true"),
                       help="also mount the SignalR conformance app (/testhub ...)")
    serve.add_argument("--log-level", default=env("log-level", "info"))
    serve.add_argument("--drain-grace", type=float, default=None,
                       help="seconds SIGTERM waits for clients to leave after Close{allowReconnect} (default 10)")
    serve.add_argument("--cors-origins", default=None,
                       help="comma-separated origins allowed to call the REST API from a browser (default: none)")
    agent = sub.add_parser("agent", help="run the reference echo agent against Redis")
    agent.add_argument("--redis-url", default=env("redis-url"))
    agent.add_argument("--script", default=env("agent-script"), help="a file of agent lines, one per turn")
    simulate = sub.add_parser("simulate", help="simulated callers against a hub")
    simulate.add_argument("--url", default=env("url", "http://127.0.0.1:8000"))
    simulate.add_argument("--key", default=env("key"))
    simulate.add_argument("--calls", type=int, default=1)
    simulate.add_argument("--duration", type=float, default=20.0)
    simulate.add_argument("--agent-id", default="agt_simulated")
    watch = sub.add_parser("watch", help="print the transcript and levels of live calls")
    from hub.client.watch_cli import add_arguments as watch_arguments

    watch_arguments(watch, env)
    sub.add_parser("keys", help="manage API keys: keys create|list|revoke ... (see `python -m hub keys --help`)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "serve":
        return _serve(args)
    if args.command == "agent":
        return _agent(args)
    if args.command == "simulate":
        return _simulate(args)
    if args.command == "watch":
        return _watch(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
