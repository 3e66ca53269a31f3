"""python -m bench.cql2: our CQL2 parser (lark Earley grammar, layers/cql.py) against the `cql2` package (Rust).

(a) Acceptance: every cql2-text and cql2-json filter of tests/test_cql2.py goes through both parsers and is
compared with what the tests expect (accept, or reject as a syntax error). For cql2 "accept" means it
returned CQL2-JSON that our JSON path (the adapter a switch would use) also accepts.
(b) Speed: median of N parses of small, medium and large filters, and the ratio ours/cql2 measured in this
run. No database is needed. Needs `pip install cql2` (it is not a project dependency).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from layers import cql as ours

REPO = Path(__file__).resolve().parents[1]
SYNTAX = ("syntax error", "empty filter", "invalid POINT geometry")  # messages of parse-level rejections


def _cases() -> tuple[list[tuple[str, bool]], list[dict[str, Any]]]:
    """(text, expected to parse) and json documents, taken from tests/test_cql2.py and tests/test_filter_http.py."""
    spec = importlib.util.spec_from_file_location("test_cql2", REPO / "tests" / "test_cql2.py")
    assert spec and spec.loader
    t = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(t)

    texts: list[tuple[str, bool]] = [(c, True) for _, c, _ in t.ATS_PREDICATES]
    texts += [(t.COMBINATION.format(p1=a, p2=b, p3=c, p4=d), True) for a, b, c, d, _ in t.ATS_COMBINATIONS]
    texts += [(c, True) for _, c, _ in t.HAND_SQL]
    texts += [(c, True) for _, c, _ in t.TEXT_JSON]
    texts += [(c[3], True) for c in t.DWITHIN]
    texts += [(c, not any(s in m for s in SYNTAX)) for c, m in t.test_filter_errors.pytestmark[0].args[1]]
    texts += [("docks >= 20", True), ("docks >= ", False), ("NOT (bikes > 10) AND docks > 5", True),
              ("name = 'x'; DROP TABLE public.bike_stations; --'", False)]
    docs = [j for _, _, j in t.TEXT_JSON]
    return texts, docs


def _ours_text(text: str) -> Any:
    return ours.parse_filter(text, "cql2-text")


def _cql2_text(text: str) -> Any:
    import cql2

    doc = cql2.parse_text(text).to_json()
    return ours.parse_filter(doc if isinstance(doc, dict) else json.dumps(doc), "cql2-json")


def _verdict(parse: Callable[[str], Any], text: str) -> bool:
    """True if the filter parsed (a semantic FilterError after parsing counts as parsed)."""
    try:
        parse(text)
        return True
    except ours.FilterError as exc:
        return not any(s in str(exc) for s in SYNTAX)
    except Exception:  # cql2 raises ParseError, ValueError or a bare Exception
        return False


def acceptance() -> None:
    texts, docs = _cases()
    for name, parse in (("ours (lark)", _ours_text), ("cql2 + adapter", _cql2_text)):
        wrong = [(t, want) for t, want in texts if _verdict(parse, t) != want]
        print(f"{name:16} cql2-text: {len(texts) - len(wrong)}/{len(texts)} as expected")
        for text, want in wrong[:8]:
            print(f"{'':18}{'rejected' if want else 'accepted'}: {text[:90]}")
    import cql2

    ok = 0
    for doc in docs:
        try:
            cql2.parse_json(json.dumps(doc))
            ok += 1
        except Exception as exc:  # report any failure
            print(f"{'':18}cql2 rejected json: {json.dumps(doc)[:90]} ({str(exc)[:60]})")
    print(f"{'cql2':16} cql2-json: {ok}/{len(docs)} accepted (ours: json.loads + a walker)")
    print("notes: cql2 returns every number as a float (9007199254740993 -> 9007199254740992.0), accepts a bare "
          "property or number as a condition ('pop_other', 'S_INTERSECTS(geom, 5) AND 3'), and overflows its "
          "stack (SIGSEGV, the whole worker) on 'a = ' + '-' * 7990 + '1' with the default 8 MiB thread stack.")


def _median_ms(fn: Callable[[], Any], reps: int) -> float:
    samples = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def speed(reps: int) -> None:
    import cql2

    small = "name = 'Berlin'"
    medium = ("(pop_max > 5000000 AND NOT adm0name = 'China') OR (pop_min < 100000 AND "
              "featurecla <> 'Admin-0 capital') AND S_INTERSECTS(geom, BBOX(0, 40, 10, 50)) "
              "AND T_INTERSECTS(\"date\", INTERVAL('2022-01-01', '..'))")
    large = " AND ".join(f"pop_other <> {i}" for i in range(140))  # 559 tokens, under MAX_TOKENS
    polygon = "S_INTERSECTS(geom, POLYGON((" + ", ".join(f"{i / 10} {i / 20}" for i in range(190)) + ", 0 0)))"
    _ours_text(small)  # build the grammar once
    print(f"{'filter':10} {'chars':>6} {'ours ms':>9} {'cql2 ms':>9} {'ours/cql2':>10}   (median of {reps})")
    for name, text in (("small", small), ("medium", medium), ("large", large), ("polygon", polygon)):
        a = _median_ms(lambda t=text: _ours_text(t), reps)  # type: ignore[misc]
        b = _median_ms(lambda t=text: cql2.parse_text(t).to_json(), reps)  # type: ignore[misc]
        print(f"{name:10} {len(text):6d} {a:9.3f} {b:9.3f} {a / b:10.0f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.cql2", description=__doc__)
    p.add_argument("--reps", type=int, default=15, help="timed parses per filter and parser (default 15)")
    args = p.parse_args(argv)
    try:
        import cql2
    except ImportError:
        print("the cql2 package is not installed: pip install cql2", file=sys.stderr)
        return 2
    print(f"cql2 {cql2.__version__} vs layers/cql.py")
    acceptance()
    speed(args.reps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
