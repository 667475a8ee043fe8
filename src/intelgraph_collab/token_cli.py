"""`intelgraph-collab token`: mint a token for development, tests and demos,
and the start-up checks of `serve` that concern security."""

from __future__ import annotations

import argparse
import os
import sys

from .auth import ROLES, check_secret, mint_token, parse_ttl
from .config import Config
from .security_settings import SecuritySettings, open_mode_problem, read_secret_file


def add_token_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    token = commands.add_parser(
        "token",
        help="mint a signed token (secret from COLLAB_SECRET or --secret-file)",
        description="Print a signed HS256 token. Example: intelgraph-collab token --user alice "
        "--role editor --graphs g1 --clearance UNCLASSIFIED,FIVE_EYES --ttl 8h",
    )
    token.add_argument("--user", required=True, help="the user (`sub`)")
    token.add_argument("--role", choices=ROLES, default="editor", help="default: editor")
    token.add_argument(
        "--graphs", required=True, help="comma-separated graph ids, or * for every graph"
    )
    token.add_argument(
        "--clearance", default="", help="comma-separated enclaves (UNCLASSIFIED is implied)"
    )
    token.add_argument("--ttl", default="8h", help="lifetime: 90s, 15m, 8h, 7d (default 8h)")
    token.add_argument("--secret-file", help="file holding the secret (else env COLLAB_SECRET)")


def run_token(args: argparse.Namespace) -> int:
    try:
        if args.secret_file:
            secret = read_secret_file(args.secret_file)
        else:
            secret = _env_secret()
        key = check_secret(secret)
        token = mint_token(
            key,
            user=args.user,
            role=args.role,
            graphs=_split(args.graphs),
            clearance=_split(args.clearance),
            ttl_seconds=parse_ttl(args.ttl),
        )
    except (OSError, ValueError) as exc:
        print(f"intelgraph-collab token: {exc}", file=sys.stderr)
        return 2
    print(token)
    return 0


def _env_secret() -> str:
    secret = os.environ.get("COLLAB_SECRET")
    if secret:
        return secret
    path = os.environ.get("COLLAB_SECRET_FILE")
    if path:
        return read_secret_file(path)
    raise ValueError("no secret: set COLLAB_SECRET or pass --secret-file PATH")


def _split(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def security_from_flags(secret_file: str | None, allowed_origins: str | None) -> SecuritySettings:
    """The security settings of `serve` (raises OSError/ValueError on a bad secret)."""
    settings = SecuritySettings.from_env(secret_file=secret_file, allowed_origins=allowed_origins)
    if settings.secret is not None:
        check_secret(settings.secret)
    return settings


def startup_check(config: Config) -> int | None:
    """Refuse (exit status 2) to serve without auth on a non-loopback address;
    say loudly that auth is off on loopback. None: go on."""
    problem = open_mode_problem(config.host, config.security)
    if problem is not None:
        print(f"intelgraph-collab serve: {problem}", file=sys.stderr, flush=True)
        return 2
    if not config.security.auth_enabled:
        print(
            "WARNING: authentication is OFF (no COLLAB_SECRET or --secret-file). Anyone on "
            f"this machine can read and write every graph at {config.host}:{config.port}. "
            "For development only.",
            file=sys.stderr,
            flush=True,
        )
    return None
