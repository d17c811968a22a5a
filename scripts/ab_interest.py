"""Paired A/B timing of two checkouts' interest engines, tick by tick, in one process.

On a shared 2-core VM the machine's speed drifts by tens of percent between runs, which buries a
5% change under run-to-run noise. Here both engines live in one process and get the *same* inputs
each tick, back to back (order alternating), so drift hits both alike: the per-tick ratio B/A is
what is reported (median and quartiles), with each side's min.

    python scripts/ab_interest.py /path/to/checkout-A /path/to/checkout-B \\
        [--world plaza festival expo] [--avatars 10000] [--ticks 40]

Each checkout's `interest` package is imported under its own path (numba caches per source file,
so the two compile separately; the first run of a fresh checkout compiles, ~1-2 minutes). The
bench worlds come from checkout A's `benches/bench_interest.py`. Both engines' results are
compared each tick (sets and diffs), so an A/B of a refactor also checks it changes nothing. A dev
tool, not run by CI.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import subprocess
import sys
import time
from types import ModuleType
from typing import Any

import numpy as np


def _load(root: str) -> ModuleType:
    """`interest` from this checkout, then forgotten by `sys.modules` so the next can load."""
    for name in [m for m in sys.modules if m == "interest" or m.startswith("interest.")]:
        del sys.modules[name]
    sys.path.insert(0, root)
    try:
        module = importlib.import_module("interest")
        for sub in ("engine", "kernels", "incremental", "grid", "pairs"):
            importlib.import_module(f"interest.{sub}")
    finally:
        sys.path.remove(root)
    for name in [m for m in sys.modules if m == "interest" or m.startswith("interest.")]:
        sys.modules[f"_ab_{id(module)}_{name}"] = sys.modules.pop(name)
    return module


def _bench(root: str, interest: ModuleType) -> ModuleType:
    """A's `benches/bench_interest.py`, importing this `interest`."""
    sys.modules["interest"] = interest
    if root not in sys.path:
        sys.path.append(root)  # (its `world.allocator`)
    path = f"{root}/benches/bench_interest.py"
    spec = importlib.util.spec_from_file_location(f"_ab_bench_{id(interest)}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    del sys.modules["interest"]
    return module


def _same(a: Any, b: Any) -> bool:
    for c in ("forwarded", "mixed", "video", "positions"):
        if not _same_rows(getattr(a, c), getattr(b, c)):
            return False
        for part in ("added", "removed", "changed"):
            if not _same_rows(getattr(getattr(a.diffs, c), part), getattr(getattr(b.diffs, c), part)):
                return False
    return True


def _same_rows(x: Any, y: Any) -> bool:
    """Same sets row by row (rows are sets: order within a row is not part of the result)."""
    if not np.array_equal(x.indptr, y.indptr):
        return False
    rows = np.repeat(np.arange(len(x.indptr) - 1), np.diff(x.indptr))
    kx = np.lexsort((x.ids, rows))
    ky = np.lexsort((y.ids, rows))
    return bool(np.array_equal(x.ids[kx], y.ids[ky]) and np.array_equal(x.attr[kx], y.attr[ky]))


def _run(a_root: str, b_root: str, worlds: list[str], sizes: list[int], ticks: int, first: str) -> None:
    """One process's pass: per world, a JSON line of both sides' tick times."""
    sides = {"A": _load(a_root), "B": _load(b_root)}
    # each side's bench worlds are built with its own classes (zones' shapes are matched by type)
    benches = {k: _bench(a_root, m) for k, m in sides.items()}
    other = "B" if first == "A" else "A"
    for n in sizes:
        for world in worlds:
            # same seed: the two sides' worlds and moves are identical
            scenarios = {k: benches[k].Scenario(world, n) for k in (first, other)}
            times: dict[str, list[float]] = {"A": [], "B": []}
            for t in range(ticks + 2):
                out = {}
                for k in (first, other) if t % 2 == 0 else (other, first):
                    w = scenarios[k]
                    w.move()
                    start = time.perf_counter()
                    out[k] = w.tick()
                    if t >= 2:  # (the first ticks add everything)
                        times[k].append(time.perf_counter() - start)
                if not np.array_equal(scenarios["A"].pos, scenarios["B"].pos) or not _same(
                    out["A"], out["B"]
                ):
                    raise SystemExit(f"{world} {n}: A and B differ at tick {t}")
            print(json.dumps({"world": world, "n": n, "first": first, **times}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--world", nargs="+", default=["plaza", "festival", "expo"])
    ap.add_argument("--avatars", type=int, nargs="+", default=[10_000])
    ap.add_argument("--ticks", type=int, default=40)
    ap.add_argument("--first", choices=["A", "B"], help=argparse.SUPPRESS)  # (one pass, JSON out)
    args = ap.parse_args()
    if args.first:
        _run(args.a, args.b, args.world, args.avatars, args.ticks, args.first)
        return
    # The copy whose kernels are loaded first in a process is ~10% faster than the other, identical
    # code or not (measured: A against A gives 0.90 or 1.12 depending on which loads first; it
    # follows the kernels' load order, not the order the worlds' arrays were allocated in).
    # So two processes, one with each side first; the geometric mean of
    # their median per-tick ratios cancels that.
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for first in ("A", "B"):
        cmd = [sys.executable, __file__, args.a, args.b, "--first", first, "--ticks", str(args.ticks)]
        cmd += ["--world", *args.world, "--avatars", *map(str, args.avatars)]
        lines = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()
        for line in lines:
            r = json.loads(line)
            runs.setdefault((r["world"], r["n"]), []).append(r)
    for (world, n), (ra, rb) in runs.items():
        ratios = [float(np.median(np.array(r["B"]) / np.array(r["A"]))) for r in (ra, rb)]
        a_min = min(min(r["A"]) for r in (ra, rb)) * 1e3
        b_min = min(min(r["B"]) for r in (ra, rb)) * 1e3
        print(
            f"{world:9s} {n:>7,}  A min {a_min:7.2f} ms  B min {b_min:7.2f} ms  "
            f"B/A {np.sqrt(ratios[0] * ratios[1]):.3f} (median per tick {ratios[0]:.3f} with A first, "
            f"{ratios[1]:.3f} with B first), same sets"
        )


if __name__ == "__main__":
    main()
