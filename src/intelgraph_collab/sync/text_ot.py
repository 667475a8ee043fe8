"""Operational transform for plain text: the `text_op` of PROTOCOL.md.

An op is a list of components that walks the whole text from left to right:

- a positive int ``n`` retains (skips over) ``n`` characters,
- a non-empty str inserts it at the current position,
- a negative int ``-n`` deletes ``n`` characters.

Characters are Unicode code points, which is what Python ``str`` indexing
counts; the JavaScript twin (``frontend/collab/text-ot.js``) converts from
UTF-16 so that both sides agree on every position. The components of an op
must span the whole text it applies to (``base_length(op) == len(text)``).

The server sequences ops in one total order; an op made against an older
state is brought up to date with `transform_against`. The tie-break is the
protocol's: when two ops insert at the same position, the insert of the op
sequenced first (``a`` in ``transform(a, b)``) ends up on the left. Only TP1
is needed (and provided): a central sequencer means no two clients ever
transform along different paths.

Every function is pure. Only `check` validates untrusted input; the other
functions expect ops that passed it (or that this module produced).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Literal

from intelgraph_collab.sync.errors import InvalidOp

Component = int | str
Op = list[Component]

DEFAULT_MAX_COMPONENTS = 10_000

# Integers past this bound lose precision in JavaScript clients, so the two
# implementations could disagree about them: refuse them at the edge.
MAX_SAFE_INTEGER = 2**53 - 1

# A lone surrogate counts as one code point here but merges with a neighbour
# into a single astral code point once JavaScript concatenates strings, so
# positions would drift between server and clients. JSON escapes of a proper
# pair ("\ud83d\ude00") decode to one astral code point and are fine.
_SURROGATE = re.compile("[\ud800-\udfff]")

Kind = Literal["retain", "insert", "delete"]


def check(op: object, *, max_components: int = DEFAULT_MAX_COMPONENTS) -> Op:
    """Validate an untrusted op (decoded JSON) and return it normalized.

    Raises InvalidOp naming the first offending component. This checks the
    shape only; whether the op spans a given text is `apply`'s (or
    `transform`'s) business, since only the caller knows the text.
    """
    if not isinstance(op, list):
        raise InvalidOp(f"a text op must be an array of components, got {_json_type(op)}")
    if len(op) > max_components:
        raise InvalidOp(f"a text op may have at most {max_components} components, got {len(op)}")
    for index, component in enumerate(op):
        _check_component(index, component)
    return normalize(op)


def _check_component(index: int, component: object) -> None:
    where = f"component {index}"
    # bool is a subclass of int in Python; JSON true/false are not lengths.
    if isinstance(component, bool) or not isinstance(component, int | str):
        raise InvalidOp(
            f"{where}: expected a non-zero integer or a non-empty string, "
            f"got {_json_type(component)}"
        )
    if isinstance(component, int):
        if component == 0:
            raise InvalidOp(f"{where}: a retain or delete of 0 characters is not allowed")
        if abs(component) > MAX_SAFE_INTEGER:
            raise InvalidOp(f"{where}: {component} is out of range")
        return
    if component == "":
        raise InvalidOp(f"{where}: an insert must not be empty")
    if _SURROGATE.search(component):
        raise InvalidOp(f"{where}: an insert must not contain lone UTF-16 surrogates")


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a non-integer number" if isinstance(value, float) else "an integer"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class _Builder:
    """Appends components to an op, keeping it in canonical form as it goes.

    Canonical form: no empty components, no two adjacent components of the
    same kind, and an insert never directly after a delete (an insert next
    to a delete is put first, as ot.js does), so equal edits have equal ops.
    """

    def __init__(self) -> None:
        self.op: Op = []

    def retain(self, n: int) -> None:
        if n <= 0:
            return
        last = self.op[-1] if self.op else None
        if isinstance(last, int) and last > 0:
            self.op[-1] = last + n
        else:
            self.op.append(n)

    def insert(self, text: str) -> None:
        if not text:
            return
        op = self.op
        last = op[-1] if op else None
        if isinstance(last, str):
            op[-1] = last + text
        elif isinstance(last, int) and last < 0:
            # Delete-then-insert and insert-then-delete are the same edit;
            # keep the insert first so the form is unique.
            before = op[-2] if len(op) >= 2 else None
            if isinstance(before, str):
                op[-2] = before + text
            else:
                op.insert(len(op) - 1, text)
        else:
            op.append(text)

    def delete(self, n: int) -> None:
        if n <= 0:
            return
        last = self.op[-1] if self.op else None
        if isinstance(last, int) and last < 0:
            self.op[-1] = last - n
        else:
            self.op.append(-n)

    def add(self, component: Component) -> None:
        if isinstance(component, str):
            self.insert(component)
        elif component > 0:
            self.retain(component)
        else:
            self.delete(-component)


def normalize(op: Iterable[Component]) -> Op:
    """The canonical form of an op that has the same effect.

    Merges adjacent components of the same kind, drops empty ones and puts
    an insert before an adjacent delete. Trailing retains are kept: an op
    always spans the whole text it applies to.
    """
    builder = _Builder()
    for component in op:
        builder.add(component)
    return builder.op


def base_length(op: Iterable[Component]) -> int:
    """The length (in code points) of the text the op applies to."""
    return sum(abs(c) for c in op if isinstance(c, int))


def target_length(op: Iterable[Component]) -> int:
    """The length (in code points) of the text the op produces."""
    length = 0
    for c in op:
        if isinstance(c, str):
            length += len(c)
        elif c > 0:
            length += c
    return length


def is_noop(op: Iterable[Component]) -> bool:
    """True when the op leaves every text it applies to unchanged."""
    return all(isinstance(c, int) and c > 0 for c in op)


def apply(text: str, op: Sequence[Component]) -> str:
    """The text after the op; InvalidOp if the op does not span the text."""
    expected = base_length(op)
    if expected != len(text):
        raise InvalidOp(f"the op spans {expected} characters but the text has {len(text)}")
    pieces: list[str] = []
    position = 0
    for c in op:
        if isinstance(c, str):
            pieces.append(c)
        elif c > 0:
            pieces.append(text[position : position + c])
            position += c
        else:
            position -= c
    return "".join(pieces)


class _Reader:
    """Reads an op component by component, splitting a component on demand.

    `transform` and `compose` walk two ops in lockstep; where the two ops'
    components have different lengths, the longer one is consumed in parts.
    """

    def __init__(self, op: Sequence[Component]) -> None:
        self._op = op
        self._index = 0
        self._used = 0  # how much of the current component is consumed
        self._skip_empty()

    def _skip_empty(self) -> None:
        while self._index < len(self._op) and _length(self._op[self._index]) == 0:
            self._index += 1

    def done(self) -> bool:
        return self._index >= len(self._op)

    def kind(self) -> Kind | None:
        if self.done():
            return None
        return _kind(self._op[self._index])

    def remaining(self) -> int:
        """Length of what is left of the current component (0 when done)."""
        if self.done():
            return 0
        return _length(self._op[self._index]) - self._used

    def take_whole(self) -> Component:
        """Consume what is left of the current component."""
        return self.take(self.remaining())

    def take(self, n: int) -> Component:
        """Consume up to n characters' worth of the current component."""
        component = self._op[self._index]
        count = min(n, _length(component) - self._used)
        if isinstance(component, str):
            piece: Component = component[self._used : self._used + count]
        elif component > 0:
            piece = count
        else:
            piece = -count
        self._used += count
        if self._used == _length(component):
            self._index += 1
            self._used = 0
            self._skip_empty()
        return piece


def _step(ra: _Reader, rb: _Reader) -> int:
    """How much both readers can consume together; never 0 for checked ops."""
    n = min(ra.remaining(), rb.remaining())
    if n == 0:
        # Only reachable with lengths the callers already checked; refuse
        # rather than loop forever.
        raise InvalidOp("the ops do not span the same text")
    return n


def _kind(component: Component) -> Kind:
    if isinstance(component, str):
        return "insert"
    return "retain" if component > 0 else "delete"


def _length(component: Component) -> int:
    return len(component) if isinstance(component, str) else abs(component)


def transform(a: Sequence[Component], b: Sequence[Component]) -> tuple[Op, Op]:
    """Rebase two concurrent ops on the same text over each other.

    Returns ``(a_prime, b_prime)`` with
    ``apply(apply(s, a), b_prime) == apply(apply(s, b), a_prime)``.
    ``a`` is the op sequenced first: when both insert at the same position,
    ``a``'s insert ends up to the left. Characters both ops delete are gone
    after either op, so neither prime deletes them again.
    """
    if base_length(a) != base_length(b):
        raise InvalidOp(
            f"concurrent ops span {base_length(a)} and {base_length(b)} characters: "
            "they do not apply to the same text"
        )
    a_prime, b_prime = _Builder(), _Builder()
    ra, rb = _Reader(a), _Reader(b)
    while not (ra.done() and rb.done()):
        # Inserts consume no base text, so they go first; a's first: the tie-break.
        if ra.kind() == "insert":
            inserted = ra.remaining()
            a_prime.add(ra.take_whole())
            b_prime.retain(inserted)
            continue
        if rb.kind() == "insert":
            inserted = rb.remaining()
            a_prime.retain(inserted)
            b_prime.add(rb.take_whole())
            continue
        # Both now consume the same base characters (equal base lengths
        # guarantee neither runs out before the other).
        n = _step(ra, rb)
        kind_a, kind_b = ra.kind(), rb.kind()
        ra.take(n)
        rb.take(n)
        if kind_a == "retain" and kind_b == "retain":
            a_prime.retain(n)
            b_prime.retain(n)
        elif kind_a == "delete" and kind_b == "retain":
            a_prime.delete(n)
        elif kind_a == "retain" and kind_b == "delete":
            b_prime.delete(n)
        # delete/delete: both removed the same characters; nothing is left to do.
    return a_prime.op, b_prime.op


def transform_against(incoming: Sequence[Component], history: Iterable[Sequence[Component]]) -> Op:
    """Bring an op made at some base up to date with the ops sequenced since.

    ``history`` is every op on the same text sequenced after the op's base,
    in sequence order, each as it was applied (broadcast). Each of them was
    sequenced before ``incoming``, so each wins the insert tie-break. The
    first history op spans the text at the base, so a mismatching incoming
    op raises InvalidOp here; with an empty history, `apply` checks it.
    """
    current: Op = list(incoming)
    for sequenced in history:
        _, current = transform(sequenced, current)
    return current


def compose(a: Sequence[Component], b: Sequence[Component]) -> Op:
    """One op with the effect of ``a`` followed by ``b``.

    ``apply(apply(s, a), b) == apply(s, compose(a, b))``; ``b`` must span the
    text ``a`` produces.
    """
    if target_length(a) != base_length(b):
        raise InvalidOp(
            f"the first op produces {target_length(a)} characters but the second "
            f"spans {base_length(b)}: they cannot be composed"
        )
    out = _Builder()
    ra, rb = _Reader(a), _Reader(b)
    while not (ra.done() and rb.done()):
        # a's deletes touch text b never sees; b's inserts touch text a never made.
        if ra.kind() == "delete":
            out.add(ra.take_whole())
            continue
        if rb.kind() == "insert":
            out.add(rb.take_whole())
            continue
        # a retains or inserts exactly the characters b retains or deletes.
        n = _step(ra, rb)
        kind_b = rb.kind()
        piece = ra.take(n)
        rb.take(n)
        if isinstance(piece, str):
            if kind_b == "retain":
                out.insert(piece)
            # inserted by a, deleted by b: it never existed.
        elif kind_b == "retain":
            out.retain(n)
        else:
            out.delete(n)
    return out.op


def transform_position(position: int, op: Sequence[Component], own: bool = False) -> int:
    """Where a caret at ``position`` (before the op) is after the op.

    A caret inside a deleted range moves to where the range was. An insert
    exactly at the caret pushes it right only if the op is the caret
    owner's own edit (``own=True``: typing moves one's caret past what one
    typed); a remote insert at the caret leaves it before the new text.
    The position is clamped to the text the op applies to.
    """
    position = min(max(0, position), base_length(op))
    result = 0
    index = 0  # position in the text before the op
    for c in op:
        if isinstance(c, str):
            if index < position or (index == position and own):
                result += len(c)
        elif c > 0:
            result += min(c, max(0, position - index))
            index += c
        else:
            index -= c
    return result
