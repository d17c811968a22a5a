#!/usr/bin/env bash
# One command from a fresh clone to a running example world:  bash scripts/serve_example.sh [CONFIG] [hubbub serve options]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
config="${1:-examples/plaza.toml}"
shift || true
exec hubbub serve "$config" "$@"
