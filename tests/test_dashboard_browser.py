"""The dashboard in a real browser: Debian's headless chromium driven by playwright (never a downloaded
browser), against the whole app in-process with the echo agent and a simulated caller.

Flow: sign in with an API key, see the call appear on the board, watch transcript lines stream, listen in
(non-silent samples counted inside the AudioWorklet), barge (microphone audio sent) and release, end the
call, open it in the history with its recording. Screenshots go to artifacts/; console errors fail the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.auth.principal import ALL_SCOPES, DEFAULT_TENANT
from hub.simulate.callers import simulate_call
from tests.support.ports import free_port
from tests.support.timing import scaled, wait_for
from tests.voice_rig import VoiceRig, voice_hub

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists() or shutil.which("node") is None,
                                reason="needs Debian's chromium (scripts/install --test)")


def ms(seconds: float) -> float:
    return scaled(seconds) * 1000


@contextlib.asynccontextmanager
async def browser_page(tmp_path: Path) -> AsyncIterator[tuple[Any, list[str]]]:
    """A fresh profile at 1280x800; yields the page and the console errors seen (the test asserts none)."""
    from playwright.async_api import async_playwright

    errors: list[str] = []
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 800}, permissions=["microphone"])
        try:
            page = context.pages[0] if context.pages else await context.new_page()
            page.on("console", lambda message: errors.append(f"{message.text} ({message.location.get('url')})")
                    if message.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
            page.set_default_timeout(ms(20))
            yield page, errors
        finally:
            await context.close()


async def api_key(rig: VoiceRig) -> tuple[str, str]:
    """A new API key with every scope: (the secret, its key id, which is the `sub` of the page's tokens)."""
    key, record = await rig.runtime.key_store.create_key(DEFAULT_TENANT, name="dashboard test", scopes=sorted(ALL_SCOPES))
    return str(key), str(record["id"])


async def sign_in(page: Any, rig: VoiceRig, key: str) -> None:
    await page.goto(rig.base + "/dashboard")
    await page.fill("#api-key", key)
    await page.click("#login-submit")
    await page.wait_for_selector('#conn-state[data-state="connected"]')
    assert key not in page.url


def start_caller(rig: VoiceRig, agent_id: str, channel: str, index: int, seconds: float = 60.0) -> asyncio.Task[Any]:
    token = rig.token({"voice:session"})
    return asyncio.create_task(simulate_call(rig.base, token, duration=seconds, agent_id=agent_id, index=index,
                                             metadata={"channel": channel}))


async def stop_callers(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def stats(page: Any, part: str) -> dict[str, Any]:
    value: dict[str, Any] = await page.evaluate(f"() => window.voicehubStats.{part}")
    return value


async def recording_ready(base: str, key: str, conversation_id: str, seconds: float = 20) -> None:
    """The MP3 is written when the call ends; poll its REST resource (bounded)."""
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}) as client:
        for _ in range(int(scaled(seconds) / 0.1)):
            if (await client.get(f"/api/v1/conversations/{conversation_id}/recording")).status_code == 200:
                return
            await asyncio.sleep(0.1)
    raise AssertionError(f"no recording for {conversation_id}")


def test_dashboard_live_call_listen_barge_end_history(tmp_path: Path) -> None:
    asyncio.run(_live_flow(tmp_path))


async def _live_flow(tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    async with voice_hub(tmp_path=tmp_path / "data") as rig, browser_page(tmp_path) as (page, errors):
        key, _key_id = await api_key(rig)
        await sign_in(page, rig, key)
        caller = start_caller(rig, "agt_support", "phone", 0)
        others = [start_caller(rig, "agt_sales", "webrtc", 1), start_caller(rig, "agt_billing", "whatsapp", 2)]
        try:
            # The board: the calls appear with their figures, then their first transcript lines.
            card = page.locator(".call-card", has_text="agt_support")
            await card.wait_for()
            await page.wait_for_function("() => document.querySelectorAll('.call-card .last-line .who').length >= 3",
                                         timeout=ms(20))
            conversation_id = await card.get_attribute("data-id")
            assert conversation_id and conversation_id.startswith("conv_")
            await page.wait_for_selector(f'.call-card[data-id="{conversation_id}"] .last-line .who', timeout=ms(20))
            assert await card.locator(".chip").first.inner_text() == "Phone"
            await page.screenshot(path=str(ARTIFACTS / "dashboard-board.png"))

            # Filters: channel, agent, and tags added over REST while the call runs (ConversationUpdated).
            visible = page.locator(".call-card:visible")
            await page.select_option("#f-channel", "whatsapp")
            assert await visible.count() == 1 and "agt_billing" in await visible.inner_text()
            await page.select_option("#f-channel", "")
            await page.select_option("#f-agent", "agt_sales")
            assert await visible.count() == 1 and "agt_sales" in await visible.inner_text()
            await page.select_option("#f-agent", "")
            sales = str(await page.locator(".call-card", has_text="agt_sales").get_attribute("data-id"))
            async with httpx.AsyncClient(base_url=rig.base, headers={"Authorization": f"Bearer {key}"}) as client:
                tagged = await client.post(f"/api/v1/conversations/{sales}/tags", json={"tags": ["vip"]})
                assert tagged.status_code == 200
            await page.wait_for_selector(f'.call-card[data-id="{sales}"] .chip-tag:has-text("#vip")')
            await page.fill("#f-tags", "vip")
            assert await visible.count() == 1 and await visible.get_attribute("data-id") == sales
            await page.fill("#f-tags", "")
            assert await visible.count() == 3

            # The conversation: final lines stream in (speakers told apart).
            await card.click()
            await page.wait_for_selector("#transcript li.turn[data-final='1']", timeout=ms(20))

            # Listen-in: samples flow through the AudioWorklet and are not silence.
            await page.click("#listen-toggle")
            await page.wait_for_function(
                "() => { const p = window.voicehubStats.playback; return p && p.nonSilentSamples > 4800 && p.peak > 0.01; }",
                timeout=ms(20))
            playback = await stats(page, "playback")
            assert playback["sampleRate"] == 48000 and playback["frames"] > 0
            await page.screenshot(path=str(ARTIFACTS / "dashboard-conversation.png"))
            # One side at 16 kHz: a new AudioContext at that rate, the caller's track only.
            await page.select_option("#listen-rate", "16000")
            await page.click("#listen-panel .seg[data-mode='caller']")
            await page.wait_for_function(
                "() => { const p = window.voicehubStats.playback; return p.sampleRate === 16000 && p.nonSilentSamples > 1600; }",
                timeout=ms(20))
            await page.click("#listen-toggle")
            await page.wait_for_function("() => window.voicehubStats.playback.state === 'stopped'")

            await page.fill("#whisper-text", "Offer the customer a callback.")
            await page.click("#whisper-send")
            await page.wait_for_selector("#transcript li.event-control.action-whisper")

            # Barge: push-to-talk sends microphone audio; release hands the call back.
            await page.click("#barge")
            await page.wait_for_selector("#talk:not([disabled])")
            await page.locator("#talk").hover()
            await page.mouse.down()
            await page.wait_for_function("() => window.voicehubStats.mic.chunksSent >= 10 && window.voicehubStats.mic.peak > 0")
            await page.mouse.up()
            mic = await stats(page, "mic")
            assert mic["errors"] == 0 and mic["peak"] > 0
            # Space talks too (focus is on the talk button), without pressing Release.
            await page.keyboard.down("Space")
            await page.wait_for_function(f"() => window.voicehubStats.mic.chunksSent >= {mic['chunksSent'] + 10}")
            await page.keyboard.up("Space")
            assert await page.inner_text("#barge") == "Release"
            await page.click("#barge")
            await page.wait_for_selector("#transcript li.event-control.action-barge")
            await page.wait_for_selector("#transcript li.event-control.action-release")

            # End the call from the page; the view says so and offers the history.
            await page.click("#end-call")
            await page.click("#end-confirm")
            await page.wait_for_selector(".notice a[href^='#/history/']")
            await wait_for(caller, 20)
            # The board no longer shows it; the other calls go on.
            await page.click(".back")
            await page.locator(".call-card", has_text="agt_sales").wait_for()
            assert await page.locator(f'.call-card[data-id="{conversation_id}"]').count() == 0
            assert await page.inner_text("#live-count") == "2"
        finally:
            await stop_callers([caller, *others])

        # History: the list shows it; the detail has the transcript and a playable recording.
        await recording_ready(rig.base, key, conversation_id)
        await page.click(".tab[data-tab='history']")
        await page.click(f"#history-table tr[data-id='{conversation_id}']")
        await page.wait_for_selector("#recording")
        assert await page.locator(".static-list li.turn").count() > 0
        src = await page.get_attribute("#recording", "src")
        response = await page.request.get(src)
        assert response.status == 200 and response.headers["content-type"] == "audio/mpeg"
        await page.screenshot(path=str(ARTIFACTS / "dashboard-history.png"))
        assert errors == [], errors


def test_dashboard_reconnects_and_resumes_the_transcript_without_duplicates_or_holes(tmp_path: Path) -> None:
    asyncio.run(_reconnect_flow(tmp_path))


def drop_page_connections(rig: VoiceRig, subject: str) -> int:
    """What a draining hub does to its monitors: Close{allowReconnect: true}."""
    endpoint = rig.runtime.voice_endpoint
    assert endpoint is not None
    dropped = 0
    for connection in list(endpoint.manager.all_open()):
        if getattr(connection.user, "subject", None) == subject:
            connection.close("Server is restarting.", allow_reconnect=True)
            dropped += 1
    return dropped


async def final_turns_in_history(rig: VoiceRig, conversation_id: str) -> int:
    history = await rig.runtime.broker.history(conversation_id, 0)
    return sum(1 for event in history.events if event.get("type") == "transcript" and event.get("isFinal"))


async def more_finals(rig: VoiceRig, conversation_id: str, than: int, seconds: float = 20) -> None:
    for _ in range(int(scaled(seconds) / 0.1)):
        if await final_turns_in_history(rig, conversation_id) > than:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("no new final turn while the page was disconnected")


async def _reconnect_flow(tmp_path: Path) -> None:
    negotiate = "**/hubs/voice/negotiate**"
    async with voice_hub(tmp_path=tmp_path / "data") as rig, browser_page(tmp_path) as (page, errors):
        key, key_id = await api_key(rig)
        await sign_in(page, rig, key)
        caller = start_caller(rig, "agt_support", "phone", 0)
        try:
            card = page.locator(".call-card").first
            await card.wait_for()
            conversation_id = str(await card.get_attribute("data-id"))
            await card.click()
            await page.wait_for_selector("#transcript li.turn[data-final='1']", timeout=ms(20))

            # The hub drops the page and refuses it for a while; the caller keeps talking meanwhile.
            await page.route(negotiate, lambda route: route.abort())
            finals = await final_turns_in_history(rig, conversation_id)
            assert drop_page_connections(rig, key_id) == 1
            await page.wait_for_selector('#conn-state[data-state="reconnecting"]')
            assert await page.is_visible("#banner")
            await more_finals(rig, conversation_id, finals)
            await page.screenshot(path=str(ARTIFACTS / "dashboard-reconnecting.png"))
            await page.unroute(negotiate)
            await page.wait_for_selector('#conn-state[data-state="connected"]', timeout=ms(20))

            await page.click("#end-call")
            await page.click("#end-confirm")
            await page.wait_for_selector(".notice a[href^='#/history/']")
        finally:
            await stop_callers([caller])

        async with httpx.AsyncClient(base_url=rig.base, headers={"Authorization": f"Bearer {key}"}) as client:
            transcript = (await client.get(f"/api/v1/conversations/{conversation_id}/transcript")).json()
        expected = [turn["id"] for turn in transcript["turns"]]
        shown = await page.eval_on_selector_all("#transcript li.turn", "els => els.map(e => [e.dataset.turn, e.dataset.final])")
        assert [turn for turn, final in shown if final == "1"] == expected
        assert len({turn for turn, _final in shown}) == len(shown)
        states = await page.evaluate("() => window.voicehubStats.states")
        assert states[-3:] == ["reconnecting", "syncing", "connected"]
        # Refused negotiations while the hub "was down" are the only console errors allowed.
        assert [e for e in errors if "/hubs/voice/negotiate" not in e] == [], errors


def test_dashboard_sign_in_refreshes_the_token_and_keeps_the_key_out_of_urls_and_logs(tmp_path: Path) -> None:
    asyncio.run(_sign_in_flow(tmp_path))


async def _sign_in_flow(tmp_path: Path) -> None:
    async with voice_hub(tmp_path=tmp_path / "data") as rig, browser_page(tmp_path) as (page, errors):
        key, key_id = await api_key(rig)
        seen: list[str] = []
        exchanges: list[str] = []
        page.on("request", lambda request: seen.append(request.url))
        page.on("console", lambda message: seen.append(message.text))

        async def short_lived(route: Any) -> None:
            """Hand the page 12-second tokens so that it has to refresh one during the test."""
            response = await route.fetch()
            body = await response.json()
            exchanges.append(body.get("accessToken", ""))
            if response.status == 200:
                body["expiresIn"] = 12
            await route.fulfill(response=response, json=body)

        await page.route("**/api/v1/auth/token", short_lived)
        await page.goto(rig.base + "/dashboard")
        await page.fill("#api-key", "vsnp_live_" + "x" * 40)
        await page.click("#login-submit")
        await page.wait_for_selector("#login-error:has-text('not valid')")

        await sign_in(page, rig, key)
        assert await page.inner_text("#whoami") != "" and key_id.endswith((await page.inner_text("#whoami"))[-6:])
        stored = await page.evaluate("() => [sessionStorage.getItem('voicehub.apiKey'), JSON.stringify(localStorage)]")
        assert stored[0] == key and key not in stored[1]
        # The refresh comes before the 12 s token expires (at 5 s, the page's floor).
        for _ in range(int(scaled(20) / 0.1)):
            if len(exchanges) >= 3:
                break
            await asyncio.sleep(0.1)
        assert len(exchanges) >= 3, exchanges

        # A reload signs in again from this tab's sessionStorage, without the form.
        await page.reload()
        await page.wait_for_selector('#conn-state[data-state="connected"]')
        assert await page.is_hidden("#login")

        await page.click("#logout")
        await page.wait_for_selector("#login-form")
        assert await page.evaluate("() => sessionStorage.getItem('voicehub.apiKey')") is None
        assert all(key not in line for line in seen)
        # The refused key is the only failed request.
        assert [e for e in errors if "/api/v1/auth/token" not in e] == [], errors


def test_dashboard_survives_a_hub_restart_with_redis(redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setattr("tests.voice_rig.free_port", lambda: port)  # both hub processes on one address
    asyncio.run(_restart_flow(redis_url, f"vhdash{port}", tmp_path))


async def _restart_flow(redis_url: str, prefix: str, tmp_path: Path) -> None:
    def hub() -> Any:
        return voice_hub(redis_url, prefix=prefix, tmp_path=tmp_path / "data")

    async with browser_page(tmp_path) as (page, errors):
        async with hub() as rig:
            key, _key_id = await api_key(rig)
            await sign_in(page, rig, key)
            caller = start_caller(rig, "agt_support", "phone", 0)
            try:
                card = page.locator(".call-card").first
                await card.wait_for()
                conversation_id = str(await card.get_attribute("data-id"))
                await card.click()
                await page.wait_for_selector("#transcript li.turn[data-final='1']", timeout=ms(20))
            finally:
                await stop_callers([caller])
        # The hub is down (it drained the page with allowReconnect); the page waits for it.
        await page.wait_for_selector('#conn-state[data-state="reconnecting"]')
        async with hub() as rig:
            await page.wait_for_selector('#conn-state[data-state="connected"]', timeout=ms(20))
            async with httpx.AsyncClient(base_url=rig.base, headers={"Authorization": f"Bearer {key}"}) as client:
                transcript = (await client.get(f"/api/v1/conversations/{conversation_id}/transcript")).json()
            shown = await page.eval_on_selector_all("#transcript li.turn", "els => els.map(e => [e.dataset.turn, e.dataset.final])")
            assert [turn for turn, final in shown if final == "1"] == [turn["id"] for turn in transcript["turns"]]
            assert len({turn for turn, _final in shown}) == len(shown)
            # Still signed in, still usable: the history answers with the same token.
            await page.click(".tab[data-tab='history']")
            await page.wait_for_selector(f"#history-table tr[data-id='{conversation_id}']")
    # While the hub was down the browser could not reach it: those failed requests are the only errors.
    assert [e for e in errors if "/hubs/voice" not in e] == [], errors


def test_dashboard_follows_the_keys_scopes(tmp_path: Path) -> None:
    asyncio.run(_scopes_flow(tmp_path))


async def _scopes_flow(tmp_path: Path) -> None:
    async with voice_hub(tmp_path=tmp_path / "data") as rig, browser_page(tmp_path) as (page, errors):
        store = rig.runtime.key_store
        history_only, _ = await store.create_key(DEFAULT_TENANT, name="history", scopes=["conversations:read"])
        watcher, _ = await store.create_key(DEFAULT_TENANT, name="watcher",
                                            scopes=["conversations:read", "monitor:read", "monitor:listen"])
        # Without monitor:read the hub refuses the page: it says so once and stops trying; history works.
        await page.goto(rig.base + "/dashboard")
        await page.fill("#api-key", history_only)
        await page.click("#login-submit")
        await page.wait_for_selector('#conn-state[data-state="forbidden"]')
        assert "monitor:read" in await page.inner_text("#banner")
        await page.click(".tab[data-tab='history']")
        await page.wait_for_selector("#h-summary:has-text('0 conversations')")
        await page.click("#logout")

        # monitor:read + monitor:listen: listen-in offered, supervisor controls not.
        await sign_in(page, rig, watcher)
        caller = start_caller(rig, "agt_support", "phone", 0)
        try:
            await page.locator(".call-card").first.click()
            await page.wait_for_selector("#supervisor-note:has-text('monitor:control')")
            assert await page.is_enabled("#listen-toggle")
            for control in ("#barge", "#end-call", "#whisper-send", "#whisper-text"):
                assert await page.is_disabled(control), control
        finally:
            await stop_callers([caller])
        assert [e for e in errors if "/hubs/voice/negotiate" not in e] == [], errors
