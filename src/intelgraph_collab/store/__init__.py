"""Durable stores of the per-graph op log, snapshots and write ids."""
