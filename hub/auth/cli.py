"""`python -m hub keys create|list|revoke`: manage API keys in the Redis store."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from hub.auth.keystore import RedisKeyStore
from hub.auth.principal import ALL_SCOPES
from hub.store.timefmt import parse_iso


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hub keys")
    sub = parser.add_subparsers(dest="action", required=True)
    create = sub.add_parser("create", help="create a key; prints the plaintext once")
    create.add_argument("--tenant", required=True)
    create.add_argument("--scopes", required=True, nargs="+", help="space or comma separated; 'all' for every scope")
    create.add_argument("--name", default="cli")
    create.add_argument("--expires-at", default=None, help="ISO 8601")
    create.add_argument("--sandbox", action="store_true", help="vsnp_sb_ instead of vsnp_live_")
    listing = sub.add_parser("list", help="list a tenant's keys (never the secrets)")
    listing.add_argument("--tenant", required=True)
    revoke = sub.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("--tenant", required=True)
    revoke.add_argument("--id", required=True, dest="key_id")
    return parser


def parse_scopes(values: list[str]) -> list[str]:
    scopes = [s for v in values for s in v.replace(",", " ").split()]
    return sorted(ALL_SCOPES) if scopes == ["all"] else scopes


async def _run(args: argparse.Namespace, redis_url: str, prefix: str) -> int:
    store = RedisKeyStore.from_url(redis_url, prefix=prefix)
    try:
        if args.action == "create":
            expires = parse_iso(args.expires_at) if args.expires_at else None
            plaintext, record = await store.create_key(
                args.tenant, name=args.name, scopes=parse_scopes(args.scopes), expires_at=expires,
                environment="sb" if args.sandbox else "live",
            )
            print(plaintext)
            print(json.dumps(record), file=sys.stderr)
        elif args.action == "list":
            for record in await store.list_keys(args.tenant):
                print(json.dumps(record))
        elif not await store.revoke_key(args.tenant, args.key_id):
            print(f"no key {args.key_id} in tenant {args.tenant}", file=sys.stderr)
            return 1
        return 0
    finally:
        await store.aclose()


def keys_cli(argv: list[str], redis_url: str | None, prefix: str = "voicehub") -> int:
    args = _parser().parse_args(argv)
    if not redis_url:
        print("keys commands need --redis-url (or VOICEHUB_REDIS_URL): the embedded store lives inside `serve`", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_run(args, redis_url, prefix))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
