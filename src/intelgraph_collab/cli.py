"""The `intelgraph-collab` command: `serve`, `token`, `bench`."""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from typing import Any

from .config import Config
from .token_cli import add_token_parser, run_token, security_from_flags, startup_check

log = logging.getLogger("intelgraph_collab")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":
        from .bench.cli import main as bench_main

        return bench_main(argv[1:])
    parser = argparse.ArgumentParser(prog="intelgraph-collab", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the collaboration server")
    serve.add_argument("--host", help="address to bind (env COLLAB_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (env COLLAB_PORT, default 8000)")
    serve.add_argument("--db", help="SQLite file (env COLLAB_DB, default ./collab.db)")
    serve.add_argument("--store", help="store URL: postgresql://..., memory:// (env COLLAB_STORE)")
    serve.add_argument("--fanout", help="fan-out between nodes: redis://... (env COLLAB_FANOUT)")
    serve.add_argument("--log-level", help="debug, info, warning (env COLLAB_LOG_LEVEL)")
    serve.add_argument(
        "--secret-file",
        help="token secret file: turns auth on (env COLLAB_SECRET or COLLAB_SECRET_FILE)",
    )
    serve.add_argument(
        "--allowed-origins",
        help="comma-separated browser origins allowed to connect, * for any "
        "(env COLLAB_ALLOWED_ORIGINS; default: the server's own origin)",
    )
    add_token_parser(commands)
    commands.add_parser("bench", help="load-test a server (see `intelgraph-collab bench --help`)")
    args = parser.parse_args(argv)
    if args.command == "token":
        return run_token(args)
    if args.command == "serve":
        try:
            security = security_from_flags(args.secret_file, args.allowed_origins)
        except (OSError, ValueError) as exc:
            print(f"intelgraph-collab serve: {exc}", file=sys.stderr)
            return 2
        config = Config.from_env(
            host=args.host,
            port=args.port,
            db=args.db,
            store=args.store,
            fanout=args.fanout,
            log_level=args.log_level,
            security=security,
        )
        refused = startup_check(config)
        if refused is not None:
            return refused
        return serve_forever(config)
    return 2


def serve_forever(config: Config) -> int:
    """Run uvicorn (uvloop, httptools) until SIGTERM/SIGINT, then shut down gracefully."""
    import uvicorn

    from .app import create_app
    from .websocket.native import protocol_class

    logging.basicConfig(
        level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    app = create_app(config)
    service = app.state.service

    class GracefulServer(uvicorn.Server):
        async def shutdown(self, sockets: Any = None) -> None:
            # Before uvicorn closes sockets (with 1012): commit and send what
            # is queued, then close every session with 1001.
            await service.stop()
            await super().shutdown(sockets)

    uv_config = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        loop="uvloop",
        http="httptools",
        # /ws/collaborate off the ASGI stack; other WebSocket paths as usual.
        ws=protocol_class(service) if config.ws_fast_path else "websockets-sansio",
        ws_max_size=config.ws_max_frame_bytes,
        ws_ping_interval=config.ws_ping_interval,
        ws_ping_timeout=config.ws_ping_timeout,
        ws_per_message_deflate=False,
        log_level=config.log_level,
        access_log=False,
        lifespan="on",
    )
    server = GracefulServer(uv_config)
    # The cyclic GC's full collections walk every live room's state and
    # pause the loop for tens of ms (bench/BENCHMARKS.md); our objects rarely
    # form cycles. Start-up objects are frozen out of it, and collections
    # are made rarer.
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    print(
        f"IntelGraph Collab listening on http://{config.host}:{config.port} "
        f"(WebSocket ws://{config.host}:{config.port}/ws/collaborate/{{graph_id}}; "
        f"store: {config.store or 'sqlite ' + config.db})",
        flush=True,
    )
    # server.run(), not asyncio.run(server.serve()): only run() builds the
    # loop from `loop="uvloop"` (asyncio.run would silently use the default loop).
    server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
