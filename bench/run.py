"""`make bench`: runs every bench/bench_*.py, prints one table, writes bench/latest.json.

Each module exposes ``run(quick=False) -> list[dict]`` with rows
``{"area", "case", "metric", "value", "unit", "target", "ok"}``. A module that fails
is reported as a failed row; the others still run.
"""
from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent


def discover() -> list[str]:
    return sorted(p.stem for p in HERE.glob("bench_*.py"))


def run_module(name: str, quick: bool) -> list[dict]:
    started = time.monotonic()
    try:
        mod = importlib.import_module(f"bench.{name}")
        rows = list(mod.run(quick=quick))
    except Exception as exc:  # one broken bench must not hide the others
        traceback.print_exc()
        return [{"area": name, "case": "(benchmark failed)", "metric": type(exc).__name__,
                 "value": None, "unit": "", "target": None, "ok": False, "error": str(exc)}]
    for row in rows:
        row.setdefault("area", name.removeprefix("bench_"))
        row.setdefault("target", None)
        row.setdefault("ok", None)
    print(f"  {name}: {len(rows)} rows in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return rows


def fmt_value(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if abs(v) >= 100:
            return f"{v:,.0f}"
        if abs(v) >= 1:
            return f"{v:.2f}"
        return f"{v:.4f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def print_table(rows: list[dict]) -> None:
    cols = [("area", "area"), ("case", "case"), ("metric", "metric"), ("value", "value"),
            ("unit", "unit"), ("target", "target"), ("ok", "ok")]
    cells = []
    for r in rows:
        ok = r.get("ok")
        cells.append([str(r.get("area", "")), str(r.get("case", "")), str(r.get("metric", "")),
                      fmt_value(r.get("value")), str(r.get("unit") or ""), str(r.get("target") or ""),
                      "yes" if ok is True else ("NO" if ok is False else "")])
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, (h, _) in enumerate(cols)]
    line = "  ".join(h.ljust(w) for (h, _), w in zip(cols, widths))
    print(line)
    print("-" * len(line))
    for c in cells:
        print("  ".join(v.rjust(w) if i == 3 else v.ljust(w) for i, (v, w) in enumerate(zip(c, widths))))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short runs (smoke check of the benchmarks)")
    ap.add_argument("only", nargs="*", help="module names (bench_alloc ...); default all")
    args = ap.parse_args(argv)
    names = args.only or discover()
    unknown = sorted(set(names) - set(discover()))
    if unknown:
        ap.error(f"no such benchmark module: {', '.join(unknown)} (have: {', '.join(discover())})")
    rows: list[dict] = []
    for name in names:
        rows.extend(run_module(name, args.quick))
    print_table(rows)
    out = {"when_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "quick": args.quick,
           "python": platform.python_version(), "machine": platform.machine(), "rows": rows}
    (HERE / "latest.json").write_text(json.dumps(out, indent=1, default=str) + "\n")
    print(f"\nwritten: {HERE / 'latest.json'}")
    return 1 if any(r.get("ok") is False and r.get("case") == "(benchmark failed)" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
