"""`python -m hub`: the command line (voicehub-contract.md section 7)."""

from __future__ import annotations

import argparse
import os
import sys

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route


def _env(flag: str, default: str | None) -> str | None:
    return os.environ.get("VOICEHUB_" + flag.upper().replace("-", "_"), default)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def create_app(conformance: bool = False) -> Starlette:
    routes: list[BaseRoute] = [Route("/healthz", healthz), Route("/readyz", healthz)]
    if conformance:
        from hub.conformance import conformance_routes

        routes += conformance_routes()
    return Starlette(routes=routes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hub")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the hub")
    serve.add_argument("--host", default=_env("host", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(_env("port", "8000") or "8000"))
    serve.add_argument("--redis-url", default=_env("redis-url", None))
    serve.add_argument("--conformance", action="store_true", help="also mount the SignalR conformance app (/testhub)")
    args = parser.parse_args(argv)
    if args.command == "serve":
        import uvicorn

        print(f"VoiceHub listening on http://{args.host}:{args.port}", flush=True)
        uvicorn.run(create_app(args.conformance), host=args.host, port=args.port, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
