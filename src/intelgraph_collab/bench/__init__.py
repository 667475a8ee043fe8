"""The load generator (`intelgraph-collab bench`): PROTOCOL.md clients on one
event loop, a steady or ramped write load, one-way delivery latency measured
against one clock (CLOCK_MONOTONIC), and a table or JSON at the end.

Modules: `wsclient` (a minimal fast WebSocket client), `sessions` (one
collaborator per protocol: ours, the original naive relay's, Yjs'),
`scenarios` (the presets' procedures), `stats` (pure statistics), `procstat`
(CPU and RSS by pid), `report` (tables), `cli` (the command line).
"""
