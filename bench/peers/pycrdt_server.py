"""pycrdt-websocket peer (the Python Yjs server Jupyter uses), served by uvicorn.

The stock `WebsocketServer` behind its `ASGIServer`, rooms in memory (no
store), on the same ASGI server as ours. Runs in bench/peers/.venv-pycrdt.

    bench/peers/.venv-pycrdt/bin/python bench/peers/pycrdt_server.py --port 8005
"""

import argparse
import asyncio

import uvicorn
from pycrdt.websocket import ASGIServer, WebsocketServer


async def main(host: str, port: int) -> None:
    websocket_server = WebsocketServer()
    app = ASGIServer(websocket_server)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning")
    server = uvicorn.Server(config)
    async with websocket_server:
        await server.serve()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8005)
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port))
