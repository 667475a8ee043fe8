"""A seeded, socket-free convergence simulator of clients and the server.

`world.World` runs one seeded history: 5+ `protocol_model.ModelClient`s and
one server (`servers.RoomServer`: the real Room class in-process on a
MemoryStore or an SQLite file; `servers.EngineServer`: the pure engine
behind a minimal sequencer), with random delivery order within the
protocol's guarantees and every fault of `network.py`. Every failure is
replayable from its seed: `python -m tests.reliability.sim --seed N`.
"""
