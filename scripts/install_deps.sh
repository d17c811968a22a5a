#!/usr/bin/env bash
# Installs what Hubbub needs on a fresh Debian machine (run as root).
#   scripts/install_deps.sh          runtime only (serve an example world)
#   scripts/install_deps.sh --test   plus everything the tests need (dev tools, Chromium, debootstrap)
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

debs=(libopenal1)
extra=""
if [[ "${1:-}" == "--test" ]]; then
  debs+=(chromium debootstrap)
  extra="[dev]"
fi

missing=()
for d in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$d" 2>/dev/null | grep -q "install ok installed" || missing+=("$d")
done
if ((${#missing[@]})); then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check -e ".${extra}" 2>&1 | grep -v "Running pip as the 'root' user" || true
python3 -c "import world, spatial, sfu, interest" # fail loudly if the install did not take
