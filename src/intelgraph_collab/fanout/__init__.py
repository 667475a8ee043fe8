"""Fan-out between server nodes: committed records and presence, per graph."""
