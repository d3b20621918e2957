"""`python -m hub keys create|list|revoke`: manage API keys in the Redis key store.

Keys of the embedded (in-memory) store live inside the `serve` process, so this command needs Redis;
against an embedded server use `POST /api/v1/api-keys` with a key that holds `keys:manage`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any

from redis.exceptions import RedisError

from hub.auth.keystore import RedisKeyStore
from hub.auth.principal import ALL_SCOPES
from hub.store.timefmt import parse_iso

NO_REDIS = (
    "error: `keys` needs --redis-url (or VOICEHUB_REDIS_URL). Without Redis the keys live in the memory of the "
    "`serve` process (the embedded store), which no other process can reach: use that server's development key "
    "with POST /api/v1/api-keys instead, or run the server with --redis-url."
)


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--redis-url", default=os.environ.get("VOICEHUB_REDIS_URL"), help="default: VOICEHUB_REDIS_URL")
    common.add_argument("--prefix", default=os.environ.get("VOICEHUB_PREFIX", "voicehub"), help="Redis key prefix")
    common.add_argument("--json", action="store_true", help="machine-readable output")
    parser = argparse.ArgumentParser(prog="python -m hub keys", description="Manage API keys (stored hashed in Redis).")
    sub = parser.add_subparsers(dest="action", required=True)
    create = sub.add_parser("create", parents=[common], help="create a key; prints the secret once")
    create.add_argument("--tenant", required=True, help="ten_...")
    create.add_argument("--scopes", required=True, nargs="+",
                        help=f"comma or space separated, or 'all'; known: {', '.join(sorted(ALL_SCOPES))}")
    create.add_argument("--name", default="cli")
    create.add_argument("--expires-at", default=None, help="ISO 8601, e.g. 2026-12-31T23:59:59Z")
    create.add_argument("--sandbox", action="store_true", help="a vsnp_sb_ key instead of vsnp_live_")
    listing = sub.add_parser("list", parents=[common], help="list a tenant's keys (never their secrets)")
    listing.add_argument("--tenant", required=True)
    revoke = sub.add_parser("revoke", parents=[common], help="revoke a key by id")
    revoke.add_argument("--tenant", required=True)
    revoke.add_argument("--id", required=True, dest="key_id", help="key_...")
    return parser


def parse_scopes(values: list[str]) -> list[str]:
    scopes = [s for v in values for s in v.replace(",", " ").split()]
    return sorted(ALL_SCOPES) if scopes == ["all"] else scopes


def _row(record: dict[str, Any]) -> str:
    return (f"{record['id']}  {record['prefix']}...  {record['name']!r}  scopes={','.join(record['scopes'])}  "
            f"created={record['createdAt']}  expires={record['expiresAt'] or 'never'}")


async def _run(args: argparse.Namespace) -> int:
    store = RedisKeyStore.from_url(args.redis_url, prefix=args.prefix)
    try:
        if args.action == "create":
            expires = parse_iso(args.expires_at) if args.expires_at else None
            plaintext, record = await store.create_key(args.tenant, name=args.name, scopes=parse_scopes(args.scopes),
                                                       expires_at=expires, environment="sb" if args.sandbox else "live")
            if args.json:
                print(json.dumps({**record, "key": plaintext}))
            else:
                print(plaintext)
                print(f"created {_row(record)}\n(the key is shown only this once; it is stored hashed)", file=sys.stderr)
        elif args.action == "list":
            for record in await store.list_keys(args.tenant):
                print(json.dumps(record) if args.json else _row(record))
        elif await store.revoke_key(args.tenant, args.key_id):
            print(f"revoked {args.key_id}", file=sys.stderr)
        else:
            print(f"error: no key {args.key_id} in tenant {args.tenant}", file=sys.stderr)
            return 1
        return 0
    finally:
        await store.aclose()


def keys_main(argv: list[str]) -> int:
    """`python -m hub keys ...` with argv after `keys`. Exit codes: 0 done, 1 not found or Redis down, 2 usage."""
    args = _parser().parse_args(argv)
    if not args.redis_url:
        print(NO_REDIS, file=sys.stderr)
        return 2
    try:
        return asyncio.run(_run(args))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (RedisError, OSError) as exc:
        print(f"error: Redis at {args.redis_url} did not answer: {exc}", file=sys.stderr)
        return 1


def keys_cli(argv: list[str], redis_url: str | None, prefix: str = "voicehub") -> int:
    """Older entry point: like keys_main, with the Redis URL and prefix given apart."""
    extra = (["--redis-url", redis_url] if redis_url else []) + ["--prefix", prefix]
    if argv and not argv[0].startswith("-"):
        return keys_main([argv[0], *extra, *argv[1:]])
    return keys_main(argv)
