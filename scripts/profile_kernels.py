"""Where the interest engine's compiled kernels spend their time, by function and by source line.

    python scripts/profile_kernels.py plaza 10000 --seconds 15

Runs a bench scenario (`benches/bench_interest.py`) tick after tick under ``perf record`` and
prints the share of samples per function and, for the busiest kernels, per source line.
Needs Linux ``perf`` (Debian: ``linux-perf``) and ``objdump`` (binutils); a dev tool, not a test.

Why this is not simply ``perf top``: numba's machine code has no symbols perf can see. So the
kernels are compiled afresh here (a private cache directory, so ~2 minutes) with line tables
(``NUMBA_DEBUGINFO``); their addresses go to ``/tmp/perf-PID.map`` (perf's map for JIT code),
and each kernel library's object file is disassembled with its line table to turn a sample's
address into ``file:line``. Lines of optimised code are approximate: instructions from inlined
helpers carry the helper's lines, and a loop's header line often carries the loop's bookkeeping.
Cycle counters inside the kernels blur at that scale too; use this to find where to look, and
alternating A/B timings of two checkouts to decide.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_WORK = Path(tempfile.mkdtemp(prefix="hubbub-profile-"))
# before numba is imported: line tables, and a cache of our own (a cached kernel has no line table)
os.environ["NUMBA_DEBUGINFO"] = "1"
os.environ["NUMBA_CACHE_DIR"] = str(_WORK / "numba-cache")
sys.path[:0] = [str(ROOT), str(ROOT / "benches")]

import warnings  # noqa: E402

import numba  # noqa: E402

warnings.filterwarnings("ignore", category=numba.NumbaWarning)  # "could not find source" for parfors


def _kernels() -> list[tuple[int, str, Path]]:
    """(address, symbol, object file) of every compiled function of the interest kernels."""
    from interest import grid, incremental, kernels, pairs

    out: list[tuple[int, str, Path]] = []
    for mod in (incremental, kernels, grid, pairs):
        for name, disp in vars(mod).items():
            if not isinstance(disp, numba.core.registry.CPUDispatcher):
                continue
            for i, cres in enumerate(disp.overloads.values()):
                lib = cres.library  # type: ignore[attr-defined]  # (untyped in numba)
                obj = _WORK / f"{mod.__name__}.{name}.{i}.o"
                obj.write_bytes(lib._get_compiled_object())
                for fn in lib._final_module.functions:
                    if fn.is_declaration:
                        continue
                    addr = lib.get_pointer_to_function(fn.name)
                    if addr:
                        out.append((addr, fn.name, obj))
    return sorted(set(out))


def _short(symbol: str) -> str:
    """A readable name for a numba symbol: module.function, or the parfor body it is."""
    m = re.search(r"interest(\d+)(\w+?)(\d+)(\w+?)B\d", symbol)
    if m and len(m.group(2)) == int(m.group(1)):
        return f"{m.group(2)}.{m.group(4)[: int(m.group(3))]}"
    m = re.search(r"(__numba_parfor_gufunc_0x[0-9a-f]+)", symbol)
    if m:
        return ("gufunc-wrapper " if symbol.startswith("__gufunc__") else "parfor ") + m.group(1)[-8:]
    return symbol[:60]


def _line_table(obj: Path, symbol: str) -> tuple[list[int], list[str]]:
    """Offsets (from the symbol's start) of its instructions and the source line of each."""
    asm = subprocess.run(
        ["objdump", "-d", "-l", "--no-show-raw-insn", str(obj)], capture_output=True, text=True, check=True
    ).stdout
    offs: list[int] = []
    lines: list[str] = []
    inside, start, cur = False, 0, "?"
    for ln in asm.splitlines():
        m = re.match(r"^([0-9a-f]+) <(.*)>:", ln)
        if m:
            inside = m.group(2) == symbol
            start = int(m.group(1), 16)
            continue
        if not inside:
            continue
        m = re.match(r"^(/\S+):(\d+)", ln)
        if m:
            cur = f"{Path(m.group(1)).name}:{m.group(2)}"
            continue
        m = re.match(r"^\s+([0-9a-f]+):", ln)
        if m:
            offs.append(int(m.group(1), 16) - start)
            lines.append(cur)
    return offs, lines


def _source(loc: str, obj: Path) -> str:
    name, _, num = loc.partition(":")
    if name == "<string>":  # a parfor body: numba numbers its lines as the kernel's module
        name = obj.name.split(".")[1] + ".py"
    path = ROOT / "interest" / name
    if not num.isdigit() or not path.exists():
        return ""
    text = path.read_text().splitlines()
    return text[int(num) - 1].strip()[:70] if int(num) <= len(text) else ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("world", choices=["festival", "plaza", "expo"])
    ap.add_argument("avatars", type=int)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--functions", type=int, default=15, help="functions to list")
    ap.add_argument("--kernels", type=int, default=2, help="busiest kernels to break down by line")
    ap.add_argument("--lines", type=int, default=25, help="lines to list per kernel")
    args = ap.parse_args()

    from bench_interest import Scenario

    print(f"compiling the kernels with line tables in {_WORK} (a few minutes)...", file=sys.stderr)
    s = Scenario(args.world, args.avatars)
    s.tick()
    s.move()
    s.tick()
    syms = _kernels()
    addrs = [a for a, _, _ in syms]
    with open(f"/tmp/perf-{os.getpid()}.map", "w") as fh:
        for i, (a, name, _) in enumerate(syms):
            size = addrs[i + 1] - a if i + 1 < len(syms) else 1 << 16
            fh.write(f"{a:x} {size:x} {name}\n")
    data = _WORK / "perf.data"
    perf = subprocess.Popen(["perf", "record", "-q", "-o", str(data), "-p", str(os.getpid())])
    time.sleep(0.5)  # let perf attach
    ticks = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < args.seconds:
        s.move()
        s.tick()
        ticks += 1
    perf.send_signal(signal.SIGINT)
    perf.wait()
    script = subprocess.run(
        ["perf", "script", "-i", str(data), "-F", "ip,sym"], capture_output=True, text=True, check=True
    ).stdout
    by_sym: collections.Counter[str] = collections.Counter()
    ips: dict[str, list[int]] = collections.defaultdict(list)
    total = 0
    for ln in script.splitlines():
        parts = ln.split()
        if not parts:
            continue
        total += 1
        sym = parts[1] if len(parts) > 1 else "[unknown]"
        by_sym[sym] += 1
        ips[sym].append(int(parts[0], 16))
    print(f"{ticks} ticks of {args.world} {args.avatars} in {args.seconds:.0f} s; {total} samples")
    print("\nby function (both threads; libgomp's unnamed addresses are a worker waiting):")
    for sym, k in by_sym.most_common(args.functions):
        print(f"  {100 * k / total:5.1f}%  {_short(sym)}")
    where = {name: (a, obj) for a, name, obj in syms}
    busiest = [sym for sym, _ in by_sym.most_common() if sym in where][: args.kernels]
    for sym in busiest:
        base, obj = where[sym]
        offs, lines = _line_table(obj, sym)
        per_line: collections.Counter[str] = collections.Counter()
        for ip in ips[sym]:
            i = bisect.bisect_right(offs, ip - base) - 1
            per_line[lines[i] if i >= 0 else "?"] += 1
        n = len(ips[sym])
        print(f"\n{_short(sym)}: {100 * n / total:.1f}% of samples, by line (share of this function):")
        for loc, k in per_line.most_common(args.lines):
            print(f"  {100 * k / n:5.1f}%  {loc:<22} {_source(loc, obj)}")


if __name__ == "__main__":
    main()
