"""The history pages in the browser against stored conversations: paging, filters, and a detail with
costs, analysis, transcript and sentiment (no call needed)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hub.auth.principal import DEFAULT_TENANT
from tests.rest_support import SEED_ANALYSIS, SEED_COSTS, turn
from tests.test_dashboard_browser import ARTIFACTS, api_key, browser_page, pytestmark, sign_in  # noqa: F401
from tests.voice_rig import VoiceRig, voice_hub

CHANNELS = ("phone", "webrtc", "whatsapp", "sms")


async def seed(rig: VoiceRig) -> str:
    """23 ended conversations over two days; the newest one has costs, analysis, tags and a transcript."""
    store = rig.runtime.store
    start = datetime.now(UTC) - timedelta(days=2)
    newest = ""
    for i in range(23):
        started = start + timedelta(minutes=90 * i)
        conversation = await store.create_conversation(DEFAULT_TENANT, agent_id=f"agt_team{i % 3}", channel=CHANNELS[i % 4],
                                                       direction="outbound" if i % 5 == 0 else "inbound", started_at=started)
        newest = conversation["id"]
        await store.end_conversation(DEFAULT_TENANT, newest, status="abandoned" if i % 7 == 3 else "completed",
                                     reason="user_ended", ended_at=started + timedelta(seconds=45 + 13 * i))
    await store.add_turn(DEFAULT_TENANT, newest, turn("turn_01", "agent", "Hello! How can I help?", 0.0, 2.1))
    await store.add_turn(DEFAULT_TENANT, newest, turn("turn_02", "user", "A question about my invoice.", 2.6, 4.9))
    await store.set_costs(DEFAULT_TENANT, newest, SEED_COSTS)
    await store.set_analysis(DEFAULT_TENANT, newest, SEED_ANALYSIS)
    await store.add_tags(DEFAULT_TENANT, newest, ["billing", "vip"])
    return newest


def test_history_pages_filters_and_detail(tmp_path: Path) -> None:
    asyncio.run(_history_flow(tmp_path))


async def _history_flow(tmp_path: Path) -> None:
    async with voice_hub(tmp_path=tmp_path / "data") as rig, browser_page(tmp_path) as (page, errors):
        newest = await seed(rig)
        key, _key_id = await api_key(rig)
        await sign_in(page, rig, key)
        await page.click(".tab[data-tab='history']")
        await page.wait_for_selector("#h-summary:has-text('of 23 conversations')")
        assert await page.locator("#history-table tbody tr").count() == 20
        assert await page.inner_text("#h-page") == "Page 1 of 2"
        first = page.locator("#history-table tbody tr").first
        assert await first.get_attribute("data-id") == newest  # newest first
        assert "Positive" in await first.inner_text() and "#vip" in await first.inner_text()
        await page.screenshot(path=str(ARTIFACTS / "dashboard-history-list.png"))

        await page.click("#h-next")
        await page.wait_for_selector("#h-page:has-text('Page 2 of 2')")
        assert await page.locator("#history-table tbody tr").count() == 3
        assert await page.is_disabled("#h-next") and await page.is_enabled("#h-prev")

        await page.select_option("#h-channel", "sms")
        await page.select_option("#h-status", "completed")
        await page.click(".history-filters button[type='submit']")
        await page.wait_for_selector("#h-page:has-text('Page 1 of 1')")
        rows = await page.locator("#history-table tbody tr").all_inner_texts()
        assert rows and all("SMS" in row and "Completed" in row for row in rows)

        await page.click(".history-filters button:has-text('Reset')")
        await page.wait_for_selector("#h-summary:has-text('1–20 of 23')")
        await page.click(f"#history-table tr[data-id='{newest}']")
        await page.wait_for_selector("#analysis-panel .summary")
        assert await page.inner_text("#analysis-panel .summary") == SEED_ANALYSIS["summary"]
        analysis = await page.inner_text("#analysis-panel")
        assert "Positive (0.81)" in analysis and "Billing inquiry" in analysis and "[object" not in analysis
        assert "$0.0940" in await page.inner_text("#costs-panel")
        assert await page.locator(".static-list li.turn").count() == 2
        assert "No recording" in await page.inner_text("#recording-panel")
        await page.screenshot(path=str(ARTIFACTS / "dashboard-history-detail.png"))
        assert errors == [], errors
