"""Write the shared text OT vectors that hold Python and JavaScript together.

    .venv/bin/python tests/vectors/make_text_ot_vectors.py          # rewrite
    .venv/bin/python tests/vectors/make_text_ot_vectors.py --check  # compare

- text_ot.json: apply, normalize, check (invalid ops), transform, compose,
  caret transform, UTF-16 conversion and textarea diff cases. Hand-written
  cases carry results worked out by hand, and this script refuses to write
  them if the Python engine disagrees; seeded random cases record what the
  Python engine computes (the JS twin must agree).
- text_ot_histories.json: seeded random histories of 3-5 clients (see
  text_ot_sim.py) as event schedules, with the server's log and final text,
  for the JS client test to replay through TextFieldSync.

Both files are committed; tests/unit/test_text_ot.py fails if they are not
what this script produces.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from text_ot_sim import check_history, history_vector, random_history  # noqa: E402

from intelgraph_collab.sync import text_ot  # noqa: E402
from intelgraph_collab.sync.errors import InvalidOp  # noqa: E402

CASES_PATH = HERE / "text_ot.json"
HISTORIES_PATH = HERE / "text_ot_histories.json"
SEED = 20260412
HISTORY_COUNT = 200

EMOJI = "\U0001f600"  # one code point, two UTF-16 units
PARTY = "\U0001f389"
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # 5 code points, 8 UTF-16 units
ACUTE = "\u0301"  # combining acute accent
# Random cases draw from these, so they split astral code points' neighbours,
# combining marks and ZWJ sequences: positions are code points, not graphemes.
ALPHABET = ["a", "b", "c", "\u00e9", ACUTE, EMOJI, PARTY, "\u4e2d", "\u200d"]

Case = dict[str, Any]


def hand_transform() -> list[Case]:
    """Concurrent pairs with results worked out by hand."""
    rows = [
        # name, text, a, b, a_prime, b_prime, result
        (
            "tie-break on empty text: a (sequenced first) goes left",
            "",
            ["a"],
            ["b"],
            ["a", 1],
            [1, "b"],
            "ab",
        ),
        (
            "tie-break in the middle",
            "xy",
            [1, "A", 1],
            [1, "B", 1],
            [1, "A", 2],
            [2, "B", 1],
            "xABy",
        ),
        ("tie-break at the end", "xy", [2, "A"], [2, "B"], [2, "A", 1], [3, "B"], "xyAB"),
        (
            "tie-break between emoji inserts",
            EMOJI,
            [EMOJI, 1],
            [PARTY, 1],
            [EMOJI, 2],
            [1, PARTY, 1],
            EMOJI + PARTY + EMOJI,
        ),
        (
            "emoji are one position each",
            EMOJI * 2,
            [1, PARTY, 1],
            [2, "\u2728"],
            [1, PARTY, 2],
            [3, "\u2728"],
            EMOJI + PARTY + EMOJI + "\u2728",
        ),
        (
            "overlapping deletes delete the overlap once",
            "abcdef",
            [1, -3, 2],
            [2, -3, 1],
            [1, -1, 1],
            [1, -1, 1],
            "af",
        ),
        ("the same delete twice", "abc", [-3], [-3], [], [], ""),
        (
            "deletes at both edges against an insert at the end",
            "hello",
            [-1, 3, -1],
            [5, "!"],
            [-1, 3, -1, 1],
            [3, "!"],
            "ell!",
        ),
        (
            "an insert inside a deleted range survives",
            "abcd",
            [1, -2, 1],
            [2, "X", 2],
            [1, -1, 1, -1, 1],
            [1, "X", 1],
            "aXd",
        ),
        (
            "both replace the same character",
            "abc",
            [1, "X", -1, 1],
            [1, "Y", -1, 1],
            [1, "X", 2],
            [2, "Y", 1],
            "aXYc",
        ),
        (
            "insert at the start against a delete of the first character",
            "abc",
            ["X", 3],
            [-1, 2],
            ["X", 2],
            [1, -1, 2],
            "Xbc",
        ),
        (
            "insert at the end against a delete of everything",
            "ab",
            [2, "Z"],
            [-2],
            ["Z"],
            [-2, 1],
            "Z",
        ),
        (
            "combining mark: delete the mark of e + U+0301",
            "cafe" + ACUTE,
            [4, -1],
            [5, "s"],
            [4, -1, 1],
            [4, "s"],
            "cafes",
        ),
        (
            "combining mark: insert between a letter and its mark",
            "e" + ACUTE,
            [1, "\u0308", 1],
            [2, "!"],
            [1, "\u0308", 2],
            [3, "!"],
            "e\u0308" + ACUTE + "!",
        ),
        ("a ZWJ sequence counts 5 code points", FAMILY, [5, "!"], [-5], ["!"], [-5, 1], "!"),
        (
            "both insert at 0; b also deletes the emoji after",
            EMOJI + "x",
            ["A", 2],
            ["B", -1, 1],
            ["A", 2],
            [1, "B", -1, 1],
            "ABx",
        ),
        ("no-ops", "abc", [3], [3], [3], [3], "abc"),
        ("empty ops on empty text", "", [], [], [], [], ""),
    ]
    return [
        {"name": n, "text": t, "a": a, "b": b, "a_prime": ap, "b_prime": bp, "result": r}
        for n, t, a, b, ap, bp, r in rows
    ]


def hand_compose() -> list[Case]:
    rows = [
        # name, text, a, b, composed, result
        ("insert then insert inside it", "", ["ab"], [1, "X", 1], ["aXb"], "aXb"),
        ("insert then delete it all", "", ["abc"], [-3], [], ""),
        (
            "delete then insert at the same place",
            "abc",
            [1, -1, 1],
            [1, "X", 1],
            [1, "X", -1, 1],
            "aXc",
        ),
        (
            "typing an emoji after an emoji",
            EMOJI,
            [1, PARTY],
            [2, "!"],
            [1, PARTY + "!"],
            EMOJI + PARTY + "!",
        ),
        (
            "delete at both edges, one after the other",
            "hello",
            [-1, 4],
            [3, -1],
            [-1, 3, -1],
            "ell",
        ),
        ("retain-only ops compose to a retain", "ab", [2], [2], [2], "ab"),
    ]
    return [
        {"name": n, "text": t, "a": a, "b": b, "composed": c, "result": r}
        for n, t, a, b, c, r in rows
    ]


def apply_cases() -> list[Case]:
    rows = [
        ("insert into empty text", "", ["abc"], "abc"),
        ("delete everything", "abc", [-3], ""),
        ("retain only", "abc", [3], "abc"),
        ("replace the emoji", "a" + EMOJI + "b", [1, PARTY, -1, 1], "a" + PARTY + "b"),
        ("delete a whole ZWJ sequence", "x" + FAMILY, [1, -5], "x"),
        ("delete half a ZWJ sequence", FAMILY, [-2, 3], "\U0001f469\u200d\U0001f467"),
        ("delete a combining mark only", "e" + ACUTE + "x", [1, -1, 1], "ex"),
        ("insert at the end of an emoji text", EMOJI, [1, "x"], EMOJI + "x"),
        ("delete at both edges", "hello", [-1, 3, -1], "ell"),
        ("empty op on empty text", "", [], ""),
    ]
    return [{"name": n, "text": t, "op": op, "result": r} for n, t, op, r in rows]


def apply_invalid_cases() -> list[Case]:
    """Ops that pass check but do not span the text."""
    rows = [
        ("too short", "abc", [2]),
        ("too long", "abc", [4]),
        ("retain on empty text", "", [1]),
        ("UTF-16 length of an emoji is not its length", EMOJI, [2]),
        ("delete past the end", "ab", [1, -2]),
        ("empty op on non-empty text", "a", []),
    ]
    return [{"name": n, "text": t, "op": op} for n, t, op in rows]


def normalize_cases() -> list[Case]:
    rows = [
        ([1, 1], [2]),
        ([-1, -1], [-2]),
        (["a", "b"], ["ab"]),
        ([-1, "a"], ["a", -1]),
        (["a", -1, "b"], ["ab", -1]),
        ([-1, "a", -1], ["a", -2]),
        ([1, -1, "x", 1, "y", -2, "z"], [1, "x", -1, 1, "yz", -2]),
        ([], []),
        ([3], [3]),
    ]
    return [{"op": op, "normalized": n} for op, n in rows]


def invalid_cases() -> list[Case]:
    """Values check() must refuse. Floats like 1.0 are left out on purpose:
    JSON cannot tell 1.0 from 1 in JavaScript."""
    rows: list[tuple[str, Any, int | None]] = [
        ("not an array: string", "abc", None),
        ("not an array: null", None, None),
        ("not an array: object", {"retain": 1}, None),
        ("not an array: number", 5, None),
        ("zero", [0], None),
        ("true", [True], None),
        ("false", [1, False], None),
        ("empty insert", [1, ""], None),
        ("fraction", [1.5], None),
        ("null component", [None], None),
        ("nested array", [[1]], None),
        ("object component", [{"d": 1}], None),
        ("retain past 2**53 - 1", [2**53], None),
        ("delete past -(2**53 - 1)", [-(2**53)], None),
        ("lone high surrogate", ["\ud800"], None),
        ("lone low surrogate after a letter", ["a\udc00"], None),
        ("too many components", [1, "a", 1, "b"], 3),
    ]
    cases: list[Case] = []
    for name, op, limit in rows:
        case: Case = {"name": name, "op": op}
        if limit is not None:
            case["max_components"] = limit
        cases.append(case)
    return cases


def transform_position_cases() -> list[Case]:
    rows = [
        # name, op, position, own, result
        ("remote insert at the caret leaves it before", [2, "ab", 3], 2, False, 2),
        ("own insert at the caret pushes it after", [2, "ab", 3], 2, True, 4),
        ("insert before the caret shifts it", [1, "ab", 4], 3, False, 5),
        ("insert after the caret leaves it", [4, "ab", 1], 3, False, 3),
        ("caret inside a delete moves to its start", [1, -3, 1], 3, False, 1),
        ("caret after a delete shifts back", [1, -3, 1], 5, False, 2),
        ("caret at the end of an emoji text", [2, EMOJI], 2, False, 2),
        ("own typing at the end", [2, EMOJI], 2, True, 3),
        ("caret past the end is clamped", [2], 9, False, 2),
        ("negative caret is clamped", ["x", 2], -1, False, 0),
        ("caret on empty text, remote insert", ["abc"], 0, False, 0),
        ("caret inside a replaced range ends after the new text", [1, "XY", -2, 1], 2, False, 3),
        ("caret at the start of a remote replacement stays", [1, "XY", -2, 1], 1, False, 1),
    ]
    return [
        {"name": n, "op": op, "position": p, "own": own, "result": r} for n, op, p, own, r in rows
    ]


def utf16_cases() -> list[Case]:
    """For every code-point boundary of each text, its UTF-16 offset."""
    texts = ["", "abc", "a" + EMOJI + "b", FAMILY + "e" + ACUTE, EMOJI * 3, "\u4e2d" + PARTY]
    cases: list[Case] = []
    for text in texts:
        offsets = [len(text[:i].encode("utf-16-le")) // 2 for i in range(len(text) + 1)]
        cases.append({"text": text, "utf16_offsets": offsets})
    return cases


def diff_cases() -> list[Case]:
    rows: list[tuple[str, str, str, int | None, list[Any]]] = [
        # name, old, new, caret after the edit (code points) or None, op
        ("typed at the end", "ab", "abc", 3, [2, "c"]),
        ("typed 'a' at 0 in 'aa': the caret says where", "aa", "aaa", 1, ["a", 2]),
        ("the same edit without a caret: the diff picks the end", "aa", "aaa", None, [2, "a"]),
        ("backspace of the first 'a' of 'aaa'", "aaa", "aa", 0, [-1, 2]),
        ("emoji replaced by emoji", "a" + EMOJI + "b", "a" + PARTY + "b", 2, [1, PARTY, -1, 1]),
        (
            "emoji sharing a high surrogate are not split",
            EMOJI,
            "\U0001f601",
            1,
            ["\U0001f601", -1],
        ),
        ("into empty", "", "x", 1, ["x"]),
        ("cleared", "abc", "", 0, [-3]),
        ("unchanged", "abc", "abc", 1, [3]),
        ("word inserted", "hello world", "hello brave world", 12, [6, "brave ", 5]),
        ("selection replaced", "abcdef", "abXef", 3, [2, "X", -2, 2]),
        ("pasted over everything", "abc", "xyz", 3, ["xyz", -3]),
    ]
    cases: list[Case] = []
    for name, old, new, caret, op in rows:
        case: Case = {"name": name, "old": old, "new": new, "op": op}
        if caret is not None:
            case["caret"] = caret
        cases.append(case)
    return cases


def random_text(rng: random.Random, max_length: int = 8) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, max_length)))


def random_op(rng: random.Random, text: str) -> list[Any]:
    """A random op with several components spanning `text`."""
    builder: list[Any] = []
    left = len(text)
    while left or rng.random() < 0.3:
        if rng.random() < 0.3:
            builder.append(random_text(rng, 3) or "z")
            if rng.random() < 0.5:
                continue
        if not left:
            break
        n = rng.randint(1, left)
        builder.append(n if rng.random() < 0.6 else -n)
        left -= n
    return text_ot.normalize(builder)


def random_transform(rng: random.Random, count: int) -> list[Case]:
    cases: list[Case] = []
    for i in range(count):
        text = random_text(rng)
        a, b = random_op(rng, text), random_op(rng, text)
        a_prime, b_prime = text_ot.transform(a, b)
        result = text_ot.apply(text_ot.apply(text, a), b_prime)
        cases.append(
            {
                "name": f"random {i}",
                "text": text,
                "a": a,
                "b": b,
                "a_prime": a_prime,
                "b_prime": b_prime,
                "result": result,
            }
        )
    return cases


def random_compose(rng: random.Random, count: int) -> list[Case]:
    cases: list[Case] = []
    for i in range(count):
        text = random_text(rng)
        a = random_op(rng, text)
        b = random_op(rng, text_ot.apply(text, a))
        composed = text_ot.compose(a, b)
        cases.append(
            {
                "name": f"random {i}",
                "text": text,
                "a": a,
                "b": b,
                "composed": composed,
                "result": text_ot.apply(text, composed),
            }
        )
    return cases


def verify(cases: dict[str, list[Case]]) -> None:
    """Refuse to write vectors the Python engine does not satisfy."""
    for case in cases["apply"]:
        assert text_ot.apply(case["text"], case["op"]) == case["result"], case
    for case in cases["apply_invalid"]:
        text_ot.check(case["op"])
        _assert_invalid(lambda c=case: text_ot.apply(c["text"], c["op"]), case)
    for case in cases["normalize"]:
        assert text_ot.normalize(case["op"]) == case["normalized"], case
    for case in cases["invalid"]:
        limit = case.get("max_components", text_ot.DEFAULT_MAX_COMPONENTS)
        _assert_invalid(lambda c=case, m=limit: text_ot.check(c["op"], max_components=m), case)
    for case in cases["transform"]:
        a_prime, b_prime = text_ot.transform(case["a"], case["b"])
        assert [a_prime, b_prime] == [case["a_prime"], case["b_prime"]], (case, a_prime, b_prime)
        text = case["text"]
        assert text_ot.apply(text_ot.apply(text, case["a"]), b_prime) == case["result"], case
        assert text_ot.apply(text_ot.apply(text, case["b"]), a_prime) == case["result"], case
    for case in cases["compose"]:
        assert text_ot.compose(case["a"], case["b"]) == case["composed"], case
        stepwise = text_ot.apply(text_ot.apply(case["text"], case["a"]), case["b"])
        assert stepwise == case["result"] == text_ot.apply(case["text"], case["composed"]), case
    for case in cases["transform_position"]:
        moved = text_ot.transform_position(case["position"], case["op"], own=case["own"])
        assert moved == case["result"], (case, moved)
    for case in cases["diff"]:
        assert text_ot.apply(case["old"], case["op"]) == case["new"], case
        assert text_ot.check(case["op"]) == case["op"], case


def _assert_invalid(call: Any, case: Case) -> None:
    try:
        call()
    except InvalidOp:
        return
    raise AssertionError(f"expected InvalidOp: {case}")


def build_cases() -> dict[str, Any]:
    rng = random.Random(SEED)
    cases: dict[str, list[Case]] = {
        "apply": apply_cases(),
        "apply_invalid": apply_invalid_cases(),
        "normalize": normalize_cases(),
        "invalid": invalid_cases(),
        "transform": hand_transform() + random_transform(rng, 150),
        "transform_invalid": [{"a": [1], "b": [2]}, {"a": ["x"], "b": [1]}],
        "compose": hand_compose() + random_compose(rng, 100),
        "compose_invalid": [{"a": ["ab"], "b": [1]}, {"a": [-2], "b": [1]}],
        "transform_position": transform_position_cases(),
        "utf16": utf16_cases(),
        "diff": diff_cases(),
    }
    verify(cases)
    return {
        "about": (
            "Shared text OT vectors (PROTOCOL.md text_op). Positions count code points. "
            "transform(a, b) -> [a_prime, b_prime], a sequenced first (its insert goes left). "
            "Generated by tests/vectors/make_text_ot_vectors.py; do not edit by hand."
        ),
        **cases,
    }


def build_histories() -> dict[str, Any]:
    histories = []
    for i in range(HISTORY_COUNT):
        history = random_history(SEED + i)
        check_history(history)
        histories.append(history_vector(history))
    return {
        "about": (
            "Random histories of 3-5 clients as event schedules, played by "
            "tests/vectors/text_ot_sim.py; replay them through TextFieldSync. "
            "Generated by tests/vectors/make_text_ot_vectors.py; do not edit by hand."
        ),
        "histories": histories,
    }


def dump(document: dict[str, Any]) -> str:
    """JSON with one case per line: readable diffs, ASCII only (astral
    characters as surrogate-pair escapes, which every JSON parser joins)."""
    lines = ["{"]
    items = list(document.items())
    for index, (key, value) in enumerate(items):
        comma = "," if index < len(items) - 1 else ""
        if isinstance(value, list):
            lines.append(f"  {json.dumps(key)}: [")
            for i, case in enumerate(value):
                sep = "," if i < len(value) - 1 else ""
                lines.append(f"    {json.dumps(case, separators=(',', ':'))}{sep}")
            lines.append(f"  ]{comma}")
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def outputs() -> dict[Path, str]:
    return {CASES_PATH: dump(build_cases()), HISTORIES_PATH: dump(build_histories())}


def main(argv: list[str]) -> int:
    stale = []
    for path, content in outputs().items():
        if "--check" in argv:
            if not path.exists() or path.read_text(encoding="utf-8") != content:
                stale.append(path.name)
        else:
            path.write_text(content, encoding="utf-8")
    if stale:
        print(f"stale: {', '.join(stale)}; run {Path(__file__).name}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
