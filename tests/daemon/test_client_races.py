"""The client against replies that race its own closing (API-10.2-1: one reply per request).

``gcs send`` once printed "reply to an unknown request 5" (request 5 is its ``leave``): the
leave returned on the member's ``end`` event, the client closed — settling every outstanding
request itself —, and the leave's reply, received just before the close, was then read by a
client that no longer knew the request. The daemon here is the real one, in this process, over
its real socket; the application waits a few loop turns between its leave and its close, and
the daemon's empty replies are held back a few turns, so that the loop's interleavings of that
reply with the close are all tried.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from pathlib import Path
from typing import Any

import pytest

from gcs.daemon import server
from tests.daemon.harness import client_of, running_daemons

ROUNDS = 8
TURNS = range(5)
"""200 iterations: every (application turns, reply turns) pair of ``TURNS``, ``ROUNDS`` times."""


@pytest.mark.req("API-10.2-1")
async def test_a_reply_racing_the_clients_close_is_not_a_protocol_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    original = server.Connection.reply
    held = {"turns": 0}

    def held_back_reply(self: Any, req_id: int, result: dict[str, Any] | None = None) -> None:
        loop = asyncio.get_running_loop()

        def later(turns: int) -> None:
            if turns == 0:
                original(self, req_id, result)
            else:
                loop.call_soon(later, turns - 1)

        later(0 if result else held["turns"])  # sends, delivered, leaves: replies without data

    monkeypatch.setattr(server.Connection, "reply", held_back_reply)
    caplog.set_level(logging.WARNING, logger="gcs.client")
    failures = []
    cases = list(itertools.product(TURNS, TURNS)) * ROUNDS
    async with running_daemons(tmp_path, 1) as daemons:
        for i, (app_turns, reply_turns) in enumerate(cases):
            held["turns"] = reply_turns
            caplog.clear()
            async with await client_of(daemons[0]) as client:
                group = await client.join("g")
                await (await group.send(b"%d" % i)).delivered()
                await group.leave()
                for _ in range(app_turns):
                    await asyncio.sleep(0)  # the application does something before closing
            errors = [r.getMessage() for r in caplog.records if r.name == "gcs.client"]
            if errors:
                failures.append((i, app_turns, reply_turns, errors[0]))
    assert not failures, f"{len(failures)} of {len(cases)} iterations: {failures[:3]}"
