"""`python -m hub watch` (hub/client/watch_cli.py) prints a simulated call's transcript and levels live."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from pathlib import Path

from hub.client.watch_cli import Printer, watch
from hub.simulate.callers import simulate_call
from tests.support.timing import eventually, scaled, wait_for
from tests.voice_rig import voice_hub


def test_watch_command_prints_the_live_call(tmp_path: Path) -> None:
    async def main() -> None:
        async with voice_hub(agent="echo", tmp_path=tmp_path) as rig:
            key = rig.runtime.development_key
            assert key, "the embedded hub made a development key"
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "hub", "watch", "--url", rig.base, "--key", key, "--seconds", str(scaled(12)),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ})
            assert proc.stdout is not None
            first = await wait_for(proc.stdout.readline(), 10)
            assert b"waiting for one" in first, first
            result = await simulate_call(rig.base, rig.token({"voice:session"}), duration=6.5, index=2)
            assert result.error is None
            lines: list[str] = []
            while True:
                line = (await wait_for(proc.stdout.readline(), 15)).decode()
                if not line:
                    break
                lines.append(line)
                if " ended: " in line:
                    break
            proc.terminate()
            await proc.wait()
            text = "".join(lines)
            cid = result.conversation_id
            assert f"{cid} started: agent agt_simulated" in text
            assert f"{cid} user: Can you tell me when it will arrive?" in text
            assert f"{cid} agent: It should arrive on Friday." in text
            assert f"{cid} level caller" in text and "dBFS" in text
            assert f"{cid} dtmf 2" in text
            assert f"{cid} ended: completed (user_ended)" in text

    asyncio.run(main())


def test_watch_one_conversation_ends_with_it(tmp_path: Path) -> None:
    async def main() -> None:
        async with voice_hub(agent="echo", tmp_path=tmp_path) as rig:
            from hub.client.voice import VoiceCaller

            caller = await VoiceCaller.connect(rig.base, rig.token({"voice:session"}), agent_id="agt_one")
            out = io.StringIO()
            watching = asyncio.get_running_loop().create_task(
                watch(rig.base, rig.token({"monitor:read"}), caller.conversation_id, Printer(out)))
            await eventually(lambda: bool(rig.runtime.voice.presence.of(caller.conversation_id)), 5, "the watcher")
            await caller.send_dtmf("7")
            await caller.end("user_ended")
            assert await wait_for(watching, 10) == 0
            text = out.getvalue()
            assert f"{caller.conversation_id} watching (in_progress, agent agt_one" in text
            assert "dtmf 7" in text and "ended: completed (user_ended)" in text

    asyncio.run(main())
