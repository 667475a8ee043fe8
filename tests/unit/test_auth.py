"""Tokens, claims and revocations (auth.py), without a server."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from intelgraph_collab.auth import (
    Authenticator,
    GraphForbidden,
    Revocations,
    Unauthenticated,
    bearer_token,
    check_secret,
    decode_claims,
    identity_for,
    mint_token,
    parse_ttl,
    writer_for,
)

SECRET = "unit-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
NOW = 1_800_000_000.0


def mint(**overrides: object) -> str:
    claims: dict[str, object] = {
        "user": "alice",
        "role": "editor",
        "graphs": ["g1"],
        "clearance": ["FIVE_EYES"],
        "ttl_seconds": 60,
        "now": NOW,
    }
    claims.update(overrides)
    return mint_token(SECRET, **claims)  # type: ignore[arg-type]


def test_a_minted_token_round_trips() -> None:
    claims = decode_claims(SECRET, mint(), now=NOW + 1)
    assert (claims.user, claims.role) == ("alice", "editor")
    assert claims.graphs == {"g1"} and claims.clearance == {"FIVE_EYES"}
    assert claims.issued_at == NOW and claims.expires_at == NOW + 60
    assert claims.may_open("g1") and not claims.may_open("g2")
    assert decode_claims(SECRET, mint(graphs=["*"]), now=NOW).may_open("anything")


@pytest.mark.parametrize(
    "token, reason",
    [
        (
            mint_token("x" * 40, user="a", role="editor", graphs=["*"], ttl_seconds=60, now=NOW),
            "invalid token",
        ),
        (mint(now=NOW - 120), "expired"),
        (
            jwt.encode(
                {"sub": "a", "role": "admin", "graphs": ["*"], "exp": NOW + 60},
                None,
                algorithm="none",
            ),
            "invalid token",
        ),
        (
            jwt.encode(
                {"sub": "a", "role": "admin", "graphs": ["*"], "exp": NOW + 60},
                SECRET * 2,
                algorithm="HS512",
            ),
            "invalid token",
        ),
        (
            jwt.encode({"sub": "a", "role": "root", "graphs": ["*"], "exp": NOW + 60}, SECRET),
            "`role`",
        ),
        (
            jwt.encode({"sub": "a", "role": "editor", "graphs": "g1", "exp": NOW + 60}, SECRET),
            "`graphs`",
        ),
        (jwt.encode({"sub": "a", "role": "editor", "exp": NOW + 60}, SECRET), "`graphs`"),
        (
            jwt.encode(
                {"sub": "a", "role": "editor", "graphs": ["g"], "clearance": [1], "exp": NOW + 60},
                SECRET,
            ),
            "`clearance`",
        ),
        (jwt.encode({"sub": "a", "role": "editor", "graphs": ["g"]}, SECRET), "invalid token"),
        (jwt.encode({"role": "editor", "graphs": ["g"], "exp": NOW + 60}, SECRET), "invalid token"),
        ("not.a.token", "invalid token"),
        ("", "invalid token"),
    ],
)
def test_bad_tokens_are_refused(token: str, reason: str) -> None:
    with pytest.raises(Unauthenticated, match=reason):
        decode_claims(SECRET, token, now=NOW)


def test_missing_clearance_means_unclassified_only() -> None:
    token = jwt.encode({"sub": "a", "role": "viewer", "graphs": ["g"], "exp": NOW + 60}, SECRET)
    assert decode_claims(SECRET, token, now=NOW).clearance == frozenset()


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        check_secret("short")
    assert check_secret(SECRET + "\n") == SECRET.encode()


@pytest.mark.parametrize(
    "text, seconds",
    [("90", 90), ("90s", 90), ("15m", 900), ("8h", 28800), ("7d", 604800), ("1.5h", 5400)],
)
def test_ttl_parsing(text: str, seconds: float) -> None:
    assert parse_ttl(text) == seconds


@pytest.mark.parametrize("text", ["", "8x", "h", "-5m", "1 h"])
def test_bad_ttls_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_ttl(text)


def test_bearer_header_wins_over_query() -> None:
    assert bearer_token("Bearer abc", "q") == "abc"
    assert bearer_token("bearer  abc ", None) == "abc"
    assert bearer_token("Basic abc", "q") == "q"
    assert bearer_token(None, "") is None
    assert bearer_token("Bearer ", None) is None


async def test_revocation_refuses_tokens_issued_up_to_it(tmp_path: Path) -> None:
    clock = [NOW]
    revocations = Revocations(str(tmp_path / "r.db"), clock=lambda: clock[0])
    await revocations.open()
    auth = Authenticator(SECRET, revocations, clock=lambda: clock[0])
    before = mint(now=NOW - 10)
    assert auth.authenticate(before).user == "alice"

    clock[0] = NOW + 0.5
    await revocations.revoke("alice")
    with pytest.raises(Unauthenticated, match="revoked"):
        auth.authenticate(before)
    with pytest.raises(Unauthenticated, match="revoked"):
        auth.authenticate(mint(now=NOW + 0.5))  # issued in the same millisecond
    assert auth.authenticate(mint(now=NOW + 0.501)).user == "alice"
    assert auth.authenticate(mint(user="bob", now=NOW - 10)).user == "bob"
    without_iat = jwt.encode(
        {"sub": "alice", "role": "editor", "graphs": ["g1"], "exp": NOW + 600}, SECRET
    )
    with pytest.raises(Unauthenticated, match="revoked"):
        auth.authenticate(without_iat)

    # Kept on disk: a new process refuses the old token too.
    reloaded = Revocations(str(tmp_path / "r.db"))
    await reloaded.open()
    assert reloaded.revoked(decode_claims(SECRET, before, now=NOW))


def test_admit_checks_the_graph_and_is_off_without_a_secret() -> None:
    auth = Authenticator(SECRET, Revocations(), clock=lambda: NOW)
    with pytest.raises(GraphForbidden):
        auth.admit(mint(graphs=["g1"]), "g2")
    with pytest.raises(Unauthenticated, match="no token"):
        auth.admit(None, "g1")
    claims = auth.admit(mint(), "g1")
    assert claims is not None and claims.user == "alice"
    assert Authenticator(None, Revocations()).admit(None, "g1") is None


def test_identity_comes_from_the_token_not_the_parameters() -> None:
    claims = decode_claims(
        SECRET, mint(role="commenter", clearance=["UNCLASSIFIED", "FVEY"]), now=NOW
    )
    identity = identity_for(claims, "tab-1", "mallory")
    assert (identity.user, identity.role) == ("alice", "commenter")
    assert identity.clearance == {"FVEY"}  # UNCLASSIFIED implied: one audience per real set
    writer = writer_for(identity)
    assert (writer.author, writer.role, writer.clearance) == ("alice", "commenter", {"FVEY"})
    open_identity = identity_for(None, "tab-1", "dev")
    assert (open_identity.user, open_identity.clearance) == ("dev", None)


def test_expiry_is_checked_against_the_given_clock() -> None:
    token = mint(ttl_seconds=10)
    assert decode_claims(SECRET, token, now=NOW + 9).user == "alice"
    with pytest.raises(Unauthenticated, match="expired"):
        decode_claims(SECRET, token, now=NOW + 10)


@pytest.mark.parametrize("exp", ["soon", None, True, 10**400, [1]])
def test_exp_must_be_a_number(exp: object) -> None:
    token = jwt.encode({"sub": "a", "role": "editor", "graphs": ["g"], "exp": exp}, SECRET)
    with pytest.raises(Unauthenticated, match="invalid token"):
        decode_claims(SECRET, token, now=NOW)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)
claim_sets = st.fixed_dictionaries(
    {},
    optional={
        name: json_values | st.just(["g1"]) | st.just("editor") | st.just(NOW + 60)
        for name in ("sub", "role", "graphs", "clearance", "exp", "iat", "nbf")
    },
)


@given(claim_sets)
def test_any_signed_claims_verify_or_are_refused_cleanly(claims: dict[str, object]) -> None:
    """Even with the right signature, odd claims never raise anything but Unauthenticated."""
    try:
        token = jwt.encode(claims, SECRET)
    except (TypeError, ValueError):  # not encodable as JSON: cannot be a token
        return
    try:
        verified = decode_claims(SECRET, token, now=NOW)
    except Unauthenticated:
        return
    assert isinstance(verified.user, str) and verified.role in (
        "viewer",
        "commenter",
        "editor",
        "admin",
    )


@given(st.text(max_size=200))
def test_any_string_as_a_token_is_refused_cleanly(text: str) -> None:
    with pytest.raises(Unauthenticated):
        decode_claims(SECRET, text, now=NOW)
