"""keys_main: `python -m hub keys create|list|revoke` against a real Redis."""

from __future__ import annotations

import asyncio
import json

import pytest

from hub.auth.cli import keys_cli, keys_main
from hub.auth.keys import principal_for_key
from hub.auth.keystore import RedisKeyStore
from hub.auth.principal import ALL_SCOPES


def test_create_list_revoke(redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert keys_main(["create", "--tenant", "ten_cli", "--scopes", "conversations:read,monitor:read", "--name", "ci",
                      "--redis-url", redis_url]) == 0
    out = capsys.readouterr()
    key = out.out.strip()
    assert key.startswith("vsnp_live_") and "shown only this once" in out.err

    async def check() -> None:
        store = RedisKeyStore.from_url(redis_url)
        try:
            principal = await principal_for_key(store, key)
            assert principal.tenant_id == "ten_cli" and principal.scopes == {"conversations:read", "monitor:read"}
        finally:
            await store.aclose()

    asyncio.run(check())
    assert keys_main(["create", "--tenant", "ten_cli", "--scopes", "all", "--sandbox", "--json", "--redis-url", redis_url]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["key"].startswith("vsnp_sb_") and set(created["scopes"]) == ALL_SCOPES
    assert keys_main(["list", "--tenant", "ten_cli", "--json", "--redis-url", redis_url]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [k["name"] for k in listed] == ["ci", "cli"] and all("keyHash" not in k and "key" not in k for k in listed)
    assert keys_main(["list", "--tenant", "ten_cli", "--redis-url", redis_url]) == 0
    assert key not in capsys.readouterr().out
    assert keys_main(["revoke", "--tenant", "ten_other", "--id", listed[0]["id"], "--redis-url", redis_url]) == 1
    assert keys_cli(["revoke", "--tenant", "ten_cli", "--id", listed[0]["id"]], redis_url) == 0
    assert keys_main(["list", "--tenant", "ten_cli", "--json", "--redis-url", redis_url]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1


def test_usage_errors(redis_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VOICEHUB_REDIS_URL", raising=False)
    assert keys_main(["list", "--tenant", "ten_a"]) == 2
    assert "--redis-url" in capsys.readouterr().err
    monkeypatch.setenv("VOICEHUB_REDIS_URL", redis_url)
    assert keys_main(["list", "--tenant", "ten_a"]) == 0
    assert keys_main(["create", "--tenant", "ten_a", "--scopes", "root"]) == 2
    assert "unknown scopes" in capsys.readouterr().err
    assert keys_main(["create", "--tenant", "nope", "--scopes", "all"]) == 2
    assert keys_main(["create", "--tenant", "ten_a", "--scopes", "all", "--expires-at", "soon"]) == 2
    assert keys_main(["list", "--tenant", "ten_a", "--redis-url", "redis://127.0.0.1:1/0"]) == 1
    assert "did not answer" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        keys_main(["explode"])
