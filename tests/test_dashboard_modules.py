"""The dashboard's own logic in the real browser, without calls: the transcript list (partials replaced by
finals, order by time, auto-scroll that stops when the user scrolls up) and the monitor's seq dedupe and
snapshot merge. The modules are imported into the served page."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.test_dashboard_browser import browser_page, pytestmark  # noqa: F401  (the same skip)
from tests.voice_rig import voice_hub

TRANSCRIPT_PANE = """async () => {
  const { TranscriptPane } = await import("/dashboard/static/js/transcript.js");
  const pane = new TranscriptPane();
  document.body.replaceChildren(pane.el);
  pane.startedAt = Date.parse("2026-01-01T00:00:00Z");
  const turn = (i, extra = {}) => pane.turn({ conversationId: "conv_1", turnId: `turn_${i}`, role: i % 2 ? "agent" : "user",
                                             text: `line ${i}`, isFinal: true, startTime: i * 2, seq: i + 1, ...extra });
  for (let i = 0; i < 30; i++) turn(i);
  const followed = pane.atBottom();
  turn(30, { text: "hel", isFinal: false, seq: 31 });
  const partial = pane.list.querySelector('[data-turn="turn_30"]').classList.contains("partial");
  turn(30, { text: "hello", seq: 32 });
  turn(30, { text: "he", isFinal: false, seq: 31 });  // late and older: ignored
  const row = pane.list.querySelectorAll('[data-turn="turn_30"]');
  pane.item({ kind: "dtmf", conversationId: "conv_1", digit: "5", seq: 40, timestamp: "2026-01-01T00:00:05Z" });
  pane.item({ kind: "dtmf", conversationId: "conv_1", digit: "5", seq: 40, timestamp: "2026-01-01T00:00:05Z" });
  const firstRows = [...pane.list.children].slice(0, 5).map((li) => li.dataset.turn || li.className);
  pane.list.scrollTop = 0;
  pane.list.dispatchEvent(new Event("scroll"));
  turn(31);
  const stayed = pane.list.scrollTop === 0 && !pane.jump.hidden;
  pane.jump.click();
  return { followed, partial, rows: row.length, text: row[0].querySelector(".bubble").textContent,
           final: row[0].dataset.final, firstRows, stayed, back: pane.atBottom() && pane.jump.hidden };
}"""

MONITOR_DEDUPE = """async () => {
  const { Monitor } = await import("/dashboard/static/js/monitor.js");
  const monitor = new Monitor({ accessToken: async () => "unused" });
  const seen = [];
  monitor.on("turn", (entry, turn) => seen.push(turn.seq));
  const turn = (seq, text, isFinal = false) => monitor.onTurn({ conversationId: "conv_1", turnId: "turn_a", role: "user",
                                                                 text, isFinal, startTime: 0, seq });
  turn(3, "a");
  turn(3, "a");        // the same event again (a replay after reconnect)
  turn(2, "older");    // older than what was applied
  turn(5, "a b", true);
  const entry = monitor.conversations.get("conv_1");
  // A snapshot older than what arrived live must not take the final back to a partial.
  monitor.applySnapshot(entry, { conversation: { id: "conv_1", status: "in_progress" },
                                 transcript: [], partials: [{ turnId: "turn_a", text: "a", isFinal: false, seq: 3 }], seq: 4 });
  monitor.onItem("dtmf", { conversationId: "conv_1", digit: "1", seq: 5 });  // seq already applied: dropped
  monitor.onItem("dtmf", { conversationId: "conv_1", digit: "2", seq: 6 });
  return { seen, text: entry.turns.get("turn_a").text, lastSeq: entry.lastSeq, items: entry.items.map((i) => i.digit) };
}"""


PLAYER = """async () => {
  const { Player } = await import("/dashboard/static/js/listen.js");
  const player = new Player(() => {});
  await player.start(16000);
  const tone = (n) => { const pcm = new Int16Array(320); for (let i = 0; i < 320; i++) pcm[i] = Math.round(8000 * Math.sin((n * 320 + i) / 5)); return new Uint8Array(pcm.buffer); };
  const frame = (n, extra = {}) => player.push({ conversationId: "conv_1", track: "mixed", frame: n, encoding: "pcm_s16le",
                                                  sampleRate: 16000, channels: 1, timestampMs: n * 20, data: tone(n), ...extra });
  for (let n = 100; n < 110; n++) frame(n);
  frame(105);                            // a repeat: dropped
  frame(113);                            // 3 frames lost: counted (and filled with silence)
  frame(114, { sampleRate: 48000 });     // another rate (in flight during a switch): ignored
  for (let n = 0; n < 10; n++) frame(n); // the hub's counter started again: followed
  const counted = { frames: player.frames, missing: player.missingFrames };
  await new Promise((resolve) => {
    const poll = () => (window.voicehubStats.playback.nonSilentSamples > 1600 ? resolve() : setTimeout(poll, 20));
    poll();
  });
  await player.stop();
  await new Promise((resolve) => setTimeout(resolve, 300)); // a late worklet report must not undo "stopped"
  return { ...counted, state: window.voicehubStats.playback.state, peak: window.voicehubStats.playback.peak };
}"""


def test_player_counts_lost_frames_drops_repeats_follows_a_restarted_counter_and_stops_cleanly(tmp_path: Path) -> None:
    result = asyncio.run(_evaluate(tmp_path, PLAYER))
    assert result["frames"] == 21 and result["missing"] == 3
    assert result["state"] == "stopped" and 0.2 < result["peak"] <= 0.25


def test_transcript_pane_replaces_partials_orders_by_time_and_stops_following_when_scrolled_up(tmp_path: Path) -> None:
    result = asyncio.run(_evaluate(tmp_path, TRANSCRIPT_PANE))
    assert result["followed"] and result["partial"]
    assert result["rows"] == 1 and result["text"] == "hello" and result["final"] == "1"
    assert result["firstRows"][:3] == ["turn_0", "turn_1", "turn_2"] and "event-dtmf" in result["firstRows"][3]
    assert result["stayed"] and result["back"]


def test_monitor_drops_duplicate_and_older_events_and_merges_snapshots_by_seq(tmp_path: Path) -> None:
    result = asyncio.run(_evaluate(tmp_path, MONITOR_DEDUPE))
    assert result == {"seen": [3, 5], "text": "a b", "lastSeq": 6, "items": ["2"]}


async def _evaluate(tmp_path: Path, script: str) -> Any:
    async with voice_hub(tmp_path=tmp_path / "data") as rig, browser_page(tmp_path) as (page, errors):
        await page.goto(rig.base + "/dashboard")
        await page.wait_for_selector("#login-form")
        result = await page.evaluate(script)
        assert errors == [], errors
        return result
