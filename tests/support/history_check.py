"""The invariants every run of every reliability test must end with.

Given the complete log the server committed (every record from seq 1, in
wire form), the clients' models (`protocol_model.ModelClient`) and the
server's final state, `check_history` lists every violation of:

- the log is contiguous: seq 1, 2, ... with `prev` = seq - 1 (no clearance);
- every acked write is in the log exactly once, at the seq of its ack
  (lost = acked but absent; duplicated = one (client_id, op_id) twice);
- every write sent is either acked or refused once the run has settled
  (a write refused on one copy may still be applied, once, from another
  copy sent before the refusal: counted in `overturned`);
- each text op inserted exactly the characters its client typed and
  deleted exactly those it meant to that were still there (inserts never
  lost, deletes never applied twice), and every surviving character is
  present once;
- replaying the log gives the server's state, and every client's replica
  equals it at the same seq.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from intelgraph_collab.sync import text_ot

from .fold_rules import Annotations, Message, apply_broadcast, text_effect
from .protocol_model import TEXT_FIELDS, ModelClient


@dataclass
class HistoryReport:
    violations: list[str] = field(default_factory=list)
    records: int = 0
    acked: int = 0
    refused: int = 0
    lost: int = 0
    duplicated: int = 0
    text_ops: int = 0
    overturned: int = 0
    """Writes refused on one copy and applied from another."""

    @property
    def ok(self) -> bool:
        return not self.violations

    def summary(self, limit: int = 12) -> str:
        shown = self.violations[:limit]
        more = len(self.violations) - len(shown)
        return "\n".join(shown + ([f"... and {more} more"] if more > 0 else []))


def check_history(
    log: Sequence[Message],
    clients: Iterable[ModelClient],
    server_state: Annotations | None = None,
    *,
    settled: bool = True,
    first_seq: int = 1,
) -> HistoryReport:
    """Every violation of the invariants above. `settled`: the run is over,
    every client is connected, caught up and has nothing pending."""
    clients = list(clients)
    report = HistoryReport(records=len(log))
    bad = report.violations
    for client in clients:
        bad.extend(client.violations)

    by_key: dict[tuple[str, str], int] = {}
    for index, record in enumerate(log):
        expected = first_seq + index
        if record["seq"] != expected:
            bad.append(f"log: seq {record['seq']} at position of {expected}")
        if record.get("prev") is not None and record["prev"] != record["seq"] - 1:
            bad.append(f"log: seq {record['seq']} has prev {record['prev']}")
        op_id = record.get("op_id")
        if op_id is not None:
            key = (record["client_id"], op_id)
            if key in by_key:
                report.duplicated += 1
                bad.append(f"duplicated: {key} applied at {by_key[key]} and {record['seq']}")
            else:
                by_key[key] = record["seq"]
    head = first_seq + len(log) - 1

    intents = {}
    for client in clients:
        report.acked += len(client.acked)
        report.refused += len(client.refused)
        for op_id, seq in client.acked.items():
            applied = by_key.get((client.client_id, op_id))
            if applied is None:
                if seq >= first_seq:
                    report.lost += 1
                    bad.append(f"lost: {client.client_id} {op_id} acked at {seq}, not in the log")
            elif applied != seq:
                bad.append(f"{client.client_id} {op_id} acked at {seq}, applied at {applied}")
        for op_id in client.refused:
            # One copy refused, another applied (a resend sent before the
            # refusal came back, or a frame still in flight on a dropped
            # connection): applied once, so no loss and no duplicate; the
            # client was told otherwise (see RELIABILITY.md, findings).
            if (client.client_id, op_id) in by_key:
                report.overturned += 1
        if settled:
            for op_id in client.sent:
                if op_id not in client.acked and op_id not in client.refused:
                    bad.append(f"{client.client_id} {op_id} neither acked nor refused")
            if client.pending:
                bad.append(f"{client.client_id} still has {len(client.pending)} pending writes")
        for op_id, intent in client.intents.items():
            intents[(client.client_id, op_id)] = intent

    state = _replay(log, intents, report) if first_seq == 1 else None
    if state is not None and server_state is not None and state != server_state:
        bad.append(f"server state differs from the replayed log: {_diff(state, server_state)}")
    reference = server_state if server_state is not None else state
    if settled and reference is not None:
        for client in clients:
            if client.seq != head:
                bad.append(f"{client.client_id} at seq {client.seq}, the log at {head}")
            elif client.annotations != reference:
                bad.append(f"{client.client_id} diverged: {_diff(client.annotations, reference)}")
    return report


def _replay(
    log: Sequence[Message], intents: dict[tuple[str, str], Any], report: HistoryReport
) -> Annotations:
    """Fold the log from nothing, checking each text op against its intent."""
    state: Annotations = {}
    bad = report.violations
    for record in log:
        if record["type"] == "text_op":
            report.text_ops += 1
            annotation = state.get(record["id"])
            if annotation is None:
                bad.append(f"seq {record['seq']}: text op on missing {record['id']!r}")
                continue
            before = annotation.get(record["field"]) or ""
            try:
                inserted, deleted = text_effect(before, record["ops"])
                text_ot.apply(before, record["ops"])
            except Exception as exc:
                bad.append(f"seq {record['seq']}: text op does not apply: {exc}")
                continue
            intent = intents.get((record["client_id"], record.get("op_id")))
            if intent is not None:
                if sorted(inserted) != sorted(intent.inserted):
                    bad.append(
                        f"seq {record['seq']}: inserted {inserted!r}, typed {intent.inserted!r}"
                    )
                wanted = intent.deleted & set(before)
                if deleted != wanted:
                    bad.append(
                        f"seq {record['seq']}: deleted {sorted(deleted)}, meant {sorted(wanted)}"
                    )
        try:
            apply_broadcast(state, record)
        except Exception as exc:
            bad.append(f"seq {record['seq']}: does not apply: {exc!r}")
            continue
        touched = state.get(record.get("id") or (record.get("payload") or {}).get("id", ""))
        if touched is not None:
            for name in TEXT_FIELDS:
                value = touched.get(name)
                if isinstance(value, str) and len(set(value)) != len(value):
                    repeated = [c for c, n in Counter(value).items() if n > 1]
                    bad.append(f"seq {record['seq']}: {name} holds {repeated!r} more than once")
    return state


def _diff(left: Annotations, right: Annotations) -> str:
    for key in sorted(set(left) | set(right)):
        if left.get(key) != right.get(key):
            return f"{key}: {left.get(key)!r} != {right.get(key)!r}"
    return "(equal)"
