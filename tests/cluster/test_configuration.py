"""Choosing the cluster adapters: `--store` / `--fanout` (COLLAB_STORE / COLLAB_FANOUT)."""

from __future__ import annotations

import pytest

from intelgraph_collab.config import Config
from intelgraph_collab.fanout.local import LocalFanOut
from intelgraph_collab.fanout.redis import RedisFanOut
from intelgraph_collab.service import make_fanout, make_store
from intelgraph_collab.store.postgres import PostgresStore


def test_the_default_is_one_node_in_process() -> None:
    fanout = make_fanout(Config())
    assert isinstance(fanout, LocalFanOut) and fanout.solo


def test_redis_and_postgresql_urls_pick_the_cluster_adapters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLLAB_STORE", "postgresql://collab@db.internal:5432/collab")
    monkeypatch.setenv("COLLAB_FANOUT", "redis://cache.internal:6380/2?prefix=team-a:")
    monkeypatch.setenv("COLLAB_PRESENCE_TTL", "7.5")
    config = Config.from_env()
    store, fanout = make_store(config), make_fanout(config)
    assert isinstance(store, PostgresStore)
    assert store.url == "postgresql://collab@db.internal:5432/collab"
    assert isinstance(fanout, RedisFanOut)
    assert (fanout.url, fanout.prefix, fanout.presence_ttl) == (
        "redis://cache.internal:6380/2",
        "team-a:",
        7.5,
    )


def test_a_flag_overrides_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLLAB_FANOUT", "redis://from-env:6379/0")
    fanout = make_fanout(Config.from_env(fanout="redis://from-flag:6379/0"))
    assert isinstance(fanout, RedisFanOut) and fanout.url == "redis://from-flag:6379/0"


def test_an_unknown_fanout_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown fan-out"):
        make_fanout(Config(fanout="kafka://broker:9092"))
