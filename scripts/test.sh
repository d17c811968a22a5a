#!/usr/bin/env bash
# One command from a fresh clone to green tests:  bash scripts/test.sh [extra pytest args]
# Installs Debian packages (OpenAL Soft, Chromium, debootstrap), the Python deps, Godot 4 (in a cached
# debootstrap chroot), then runs lint, type checks, every test (including `chromium` and `godot` markers)
# and every benchmark once (timings are taken with `pytest benches`, see docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh --test
if [[ -f scripts/install_godot.sh ]]; then bash scripts/install_godot.sh; fi
echo "== ruff";  python3 -m ruff check .
echo "== mypy";  python3 -m mypy
echo "== compiling kernels"; python3 -m world.warmup
echo "== pytest"
# Benchmarks run once here (--benchmark-disable) at CI size; `pytest benches --benchmark-only` times them
# at full size (docs/benchmarks.md).
export HUBBUB_BENCH_SMALL="${HUBBUB_BENCH_SMALL:-1}"
mkdir -p test-output
python3 -m pytest -q -p no:cacheprovider --benchmark-disable "$@"
