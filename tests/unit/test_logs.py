"""logs.format_event: one logfmt line, whatever a client put in the values."""

from __future__ import annotations

import logging

import pytest

from intelgraph_collab.logs import format_event, log_event


def test_plain_values_are_bare_and_none_is_a_dash() -> None:
    line = format_event("connect", {"graph": "g-1", "client": "tab:7", "user": None, "code": 1013})
    assert line == "event=connect graph=g-1 client=tab:7 user=- code=1013"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("two words", '"two words"'),
        ("line\nbreak event=forged", '"line\\nbreak event=forged"'),
        ('quote" back\\slash', '"quote\\" back\\\\slash"'),
        ("", '""'),
        ("caf\u00e9\u2028", '"caf\\u00e9\\u2028"'),
    ],
)
def test_other_values_are_quoted_and_escaped_onto_one_line(value: str, shown: str) -> None:
    line = format_event("connect", {"client": value})
    assert line == f"event=connect client={shown}"
    assert len(line.splitlines()) == 1


def test_long_values_are_cut_short() -> None:
    line = format_event("connect", {"client": "x" * 10_000})
    assert line == "event=connect client=" + "x" * 200 + "..."


def test_nothing_is_formatted_below_the_level(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.logs")
    with caplog.at_level(logging.WARNING, logger="test.logs"):
        log_event(logger, "quiet", client="a")
        log_event(logger, "loud", logging.ERROR, client="b")
    assert [record.getMessage() for record in caplog.records] == ["event=loud client=b"]
