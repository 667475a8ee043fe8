"""The pure sync engine: messages, validation, conflict rules, text OT, fold.

Nothing in this package does I/O or imports asyncio, FastAPI, sqlite or redis:
plain data in, plain data out, so it is tested exhaustively without a server.
"""
