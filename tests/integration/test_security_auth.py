"""Authentication through the real server: tokens, graph grants, expiry,
revocation, and open mode (PROTOCOL.md "Security")."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from intelgraph_collab.auth import decode_claims
from tests.support.client import TestClient
from tests.support.security import (
    SECRET,
    joined,
    refused_close,
    start_secure_server,
    token,
)
from tests.support.server import REPO, ServerProcess, free_port, start_server


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = start_secure_server(tmp_path_factory.mktemp("auth"))
    try:
        yield process
    finally:
        process.stop()


# -- the handshake ------------------------------------------------------------


async def test_no_token_is_closed_4401_with_nothing_sent(secure: ServerProcess) -> None:
    code, received = await refused_close(secure, "g-auth")
    assert code == 4401
    assert received == []


async def test_bad_signature_is_closed_4401(secure: ServerProcess) -> None:
    forged = token("mallory", role="admin", secret="another-secret-of-the-same-length-0123456789")
    code, received = await refused_close(secure, "g-auth", forged)
    assert (code, received) == (4401, [])


async def test_unsigned_token_is_closed_4401(secure: ServerProcess) -> None:
    # alg "none": the classic JWT bypass; only HS256 is accepted.
    unsigned = jwt.encode(
        {"sub": "mallory", "role": "admin", "graphs": ["*"], "exp": int(time.time()) + 600},
        key=None,
        algorithm="none",
    )
    code, received = await refused_close(secure, "g-auth", unsigned)
    assert (code, received) == (4401, [])


async def test_expired_token_is_closed_4401(secure: ServerProcess) -> None:
    expired = token("alice", ttl=60, now=time.time() - 120)
    code, received = await refused_close(secure, "g-auth", expired)
    assert (code, received) == (4401, [])


async def test_token_with_a_bad_role_is_closed_4401(secure: ServerProcess) -> None:
    bad = jwt.encode(
        {"sub": "alice", "role": "root", "graphs": ["*"], "exp": int(time.time()) + 600},
        SECRET,
        algorithm="HS256",
    )
    code, _ = await refused_close(secure, "g-auth", bad)
    assert code == 4401


async def test_graph_not_granted_is_closed_4403(secure: ServerProcess) -> None:
    code, received = await refused_close(secure, "g-other", token("alice", graphs=["g-auth"]))
    assert (code, received) == (4403, [])


async def test_granted_graph_and_wildcard_are_served(secure: ServerProcess) -> None:
    named, first = await joined(secure, "g-auth", token("alice", graphs=["g-auth"]))
    assert first["type"] == "initial_state"
    anywhere, first = await joined(secure, "g-anything", token("alice", graphs=["*"]))
    assert first["type"] == "initial_state"
    await named.close()
    await anywhere.close()


async def test_token_in_the_query_string_is_accepted(secure: ServerProcess) -> None:
    # Browsers cannot set headers on a WebSocket: `?token=` is their way.
    client = await TestClient.connect(secure.ws_url("g-auth", token=token("alice")))
    first = await client.wait_for(lambda m: m["type"] == "initial_state")
    assert first["seq"] >= 0
    await client.close()


async def test_the_author_is_the_token_user_not_the_user_parameter(secure: ServerProcess) -> None:
    alice, _ = await joined(secure, "g-who", token("alice"), user="mallory")
    watcher, _ = await joined(secure, "g-who", token("watcher"))
    op_id = await alice.update({"id": "who-1", "kind": "note"})
    assert (await alice.ack(op_id))["type"] == "ack"
    broadcast = await watcher.wait_type("annotation_update")
    assert broadcast["author"] == "alice"
    await alice.close()
    await watcher.close()


# -- expiry and revocation during a session -----------------------------------


async def test_session_is_closed_4401_when_its_token_expires(secure: ServerProcess) -> None:
    short = token("alice", ttl=3)
    client, _ = await joined(secure, "g-expiry", short)
    assert await client.wait_closed(timeout=10.0) == 4401


def revoke(server: ServerProcess, bearer: str, user: str) -> httpx.Response:
    return httpx.post(
        f"{server.http_url}/api/admin/revoke",
        json={"user": user},
        headers={"Authorization": f"Bearer {bearer}"},
        timeout=10.0,
    )


async def test_revocation_closes_live_sessions_and_refuses_older_tokens(
    secure: ServerProcess,
) -> None:
    bob_token = token("bob")
    tabs = [(await joined(secure, graph, bob_token))[0] for graph in ("g-rev1", "g-rev1", "g-rev2")]
    bystander, _ = await joined(secure, "g-rev1", token("carol"))

    response = await asyncio.to_thread(revoke, secure, token("root", role="admin"), "bob")
    assert response.status_code == 200
    assert response.json()["sessions_closed"] == 3

    # The closes were sent before the response: the sessions are gone already.
    codes = await asyncio.gather(*(tab.wait_closed() for tab in tabs))
    assert codes == [4401, 4401, 4401]
    code, received = await refused_close(secure, "g-rev1", bob_token)
    assert (code, received) == (4401, [])
    # The bystander's session goes on.
    op_id = await bystander.update({"id": "after-revoke", "kind": "note"})
    assert (await bystander.ack(op_id))["type"] == "ack"
    # A token issued after the revocation is accepted.
    fresh, first = await joined(secure, "g-rev1", token("bob"))
    assert first["type"] == "initial_state"
    for client in (bystander, fresh):
        await client.close()


async def test_revocation_needs_an_admin_token(secure: ServerProcess) -> None:
    editor = await asyncio.to_thread(revoke, secure, token("eve", role="editor"), "bob")
    assert editor.status_code == 403
    assert editor.json()["error"]["code"] == "forbidden"
    anonymous = await asyncio.to_thread(
        httpx.post, f"{secure.http_url}/api/admin/revoke", json={"user": "bob"}
    )
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    malformed = await asyncio.to_thread(
        httpx.post,
        f"{secure.http_url}/api/admin/revoke",
        content=b"[1, 2",
        headers={"Authorization": f"Bearer {token('root', role='admin')}"},
    )
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == "bad_message"


async def test_revocation_survives_a_restart(tmp_path: Path) -> None:
    server = start_secure_server(tmp_path)
    try:
        old = token("dave")
        response = await asyncio.to_thread(revoke, server, token("root", role="admin"), "dave")
        assert response.status_code == 200
        server.restart()  # kill -9, then start on the same database
        code, _ = await refused_close(server, "g-durable", old)
        assert code == 4401
    finally:
        server.stop()


# -- open mode and configuration ----------------------------------------------


async def test_without_a_secret_loopback_runs_open_and_says_so(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        writer, first = await joined(server, "g-open", user="dev")
        assert first["type"] == "initial_state"
        watcher, _ = await joined(server, "g-open")
        op_id = await writer.update({"id": "x1"})
        assert (await writer.ack(op_id))["type"] == "ack"
        assert (await watcher.wait_type("annotation_update"))["author"] == "dev"
        for client in (writer, watcher):
            await client.close()
        assert "authentication is OFF" in server.log()
    finally:
        server.stop()


def test_without_a_secret_a_non_loopback_address_is_refused(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("COLLAB_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "intelgraph_collab.cli",
            "serve",
            "--host",
            "0.0.0.0",
            "--port",
            str(free_port()),
            "--db",
            str(tmp_path / "open.db"),
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "refusing to serve 0.0.0.0 without authentication" in result.stderr


def test_a_short_secret_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "intelgraph_collab.cli",
            "serve",
            "--port",
            str(free_port()),
            "--db",
            str(tmp_path / "short.db"),
        ],
        env={**os.environ, "COLLAB_SECRET": "too-short"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "at least 32 bytes" in result.stderr


async def test_secret_file_turns_auth_on(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    server = ServerProcess(tmp_path / "collab.db", args=["--secret-file", str(secret_file)])
    server.env.pop("COLLAB_SECRET", None)
    server.start()
    try:
        code, _ = await refused_close(server, "g-file")
        assert code == 4401
        client, first = await joined(server, "g-file", token("alice"))
        assert first["type"] == "initial_state"
        await client.close()
    finally:
        server.stop()


def test_token_command_mints_a_token_the_server_accepts(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "intelgraph_collab.cli",
            "token",
            "--user",
            "alice",
            "--role",
            "editor",
            "--graphs",
            "g1",
            "--clearance",
            "UNCLASSIFIED,FIVE_EYES",
            "--ttl",
            "8h",
        ],
        env={**os.environ, "COLLAB_SECRET": SECRET},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    claims = decode_claims(SECRET, result.stdout.strip())
    assert (claims.user, claims.role) == ("alice", "editor")
    assert claims.graphs == {"g1"}
    assert claims.clearance == {"UNCLASSIFIED", "FIVE_EYES"}
    assert 8 * 3600 - 5 <= claims.expires_at - time.time() <= 8 * 3600 + 5
