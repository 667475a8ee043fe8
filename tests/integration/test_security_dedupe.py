"""With auth on, write dedupe is per (user, client_id, op_id): reusing another
user's client_id cannot make that user's writes look like duplicates."""

from __future__ import annotations

from pathlib import Path

from tests.support.security import joined, start_secure_server, token


async def test_another_users_client_id_cannot_swallow_their_writes(tmp_path: Path) -> None:
    server = start_secure_server(tmp_path)
    try:
        mallory, _ = await joined(server, "g", token("mallory"), client_id="alice-tab")
        squatted = await mallory.update({"id": "m", "label": "squat"}, op_id="1")
        assert (await mallory.ack(squatted))["type"] == "ack"
        alice, _ = await joined(server, "g", token("alice"), client_id="alice-tab")
        mine = await alice.update({"id": "a", "label": "alice's"}, op_id="1")
        ack = await alice.ack(mine)
        assert ack["type"] == "ack" and "duplicate" not in ack and ack["seq"] == 2
        # ...while alice's own resend still deduplicates.
        again = await alice.ack(await alice.update({"id": "a", "label": "alice's"}, op_id="1"))
        assert again == {"type": "ack", "op_id": "1", "seq": 2, "duplicate": True}
        reader, state = await joined(server, "g", token("reader"))
        assert state["data"]["a"]["created_by"] == "alice"
        for client in (mallory, alice, reader):
            await client.close()
    finally:
        server.stop()
