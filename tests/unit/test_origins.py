"""The Origin allowlist (origins.py)."""

from __future__ import annotations

import pytest

from intelgraph_collab.origins import OriginPolicy, normalise
from intelgraph_collab.security_settings import (
    SecuritySettings,
    is_loopback,
    open_mode_problem,
    parse_origins,
    revocations_path,
)


def test_normalise() -> None:
    assert normalise("https://Example.com") == ("https", "example.com", 443)
    assert normalise("http://example.com:80") == ("http", "example.com", 80)
    assert normalise("http://[::1]:8000") == ("http", "::1", 8000)
    for bad in ("null", "", "example.com", "ftp://x", "http://", "http://x:99999"):
        assert normalise(bad) is None


@pytest.mark.parametrize(
    "origin, allowed",
    [
        (None, True),
        ("http://127.0.0.1:8000", True),
        ("http://localhost:8000", True),
        ("https://localhost:8000", True),
        ("http://[::1]:8000", True),
        ("http://127.0.0.1:8001", False),
        ("http://localhost", False),
        ("https://evil.example", False),
        ("http://localhost.evil.example:8000", False),
        ("null", False),
    ],
)
def test_default_is_the_own_origin_on_loopback(origin: str | None, allowed: bool) -> None:
    policy = OriginPolicy(None, "127.0.0.1", 8000)
    assert policy.allows(origin, "127.0.0.1:8000") is allowed


def test_bound_to_a_name_only_that_name_is_own() -> None:
    policy = OriginPolicy(None, "collab.example", 443)
    assert policy.allows("https://collab.example", "collab.example")
    assert not policy.allows("http://localhost:443", "collab.example")


def test_bound_everywhere_the_request_host_is_own() -> None:
    policy = OriginPolicy(None, "0.0.0.0", 8000)
    assert policy.allows("http://analyst-box:8000", "analyst-box:8000")
    assert not policy.allows("http://evil.example:8000", "analyst-box:8000")
    assert not policy.allows("http://evil.example:8000", None)


def test_configured_origins_replace_the_default() -> None:
    policy = OriginPolicy(
        parse_origins("https://app.example, http://localhost:5173/"), "127.0.0.1", 8000
    )
    assert policy.allows("https://app.example", "127.0.0.1:8000")
    assert policy.allows("https://APP.example:443", "127.0.0.1:8000")
    assert policy.allows("http://localhost:5173", "127.0.0.1:8000")
    assert not policy.allows("http://127.0.0.1:8000", "127.0.0.1:8000")
    assert OriginPolicy(("*",), "127.0.0.1", 8000).allows("https://anything.example", None)


def test_loopback_and_open_mode() -> None:
    for host in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"):
        assert is_loopback(host), host
        assert open_mode_problem(host, SecuritySettings()) is None
    for host in ("0.0.0.0", "::", "10.0.0.5", "example.com"):
        assert not is_loopback(host), host
        assert open_mode_problem(host, SecuritySettings()) is not None
        assert open_mode_problem(host, SecuritySettings(secret="s" * 40)) is None


def test_revocations_are_kept_beside_the_sqlite_store() -> None:
    settings = SecuritySettings()
    assert revocations_path(settings, None, "data/collab.db") == "data/collab.revocations.db"
    assert revocations_path(settings, "sqlite:///var/c.db", "x") == "/var/c.revocations.db"
    assert revocations_path(settings, "memory://", "x") is None
    assert revocations_path(settings, None, ":memory:") is None
    chosen = SecuritySettings(revocations_db="/srv/revoked.db")
    assert revocations_path(chosen, "postgresql://db", "x") == "/srv/revoked.db"


def test_the_secret_is_not_in_the_repr() -> None:
    assert "hunter2" not in repr(SecuritySettings(secret="hunter2" * 8))
