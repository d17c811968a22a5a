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

export PIP_ROOT_USER_ACTION=ignore
python3 -m pip install -q --disable-pip-version-check -e ".${extra}"
# Fail loudly if the install did not take (and check it points at this checkout).
python3 - <<'PY'
import pathlib, world, spatial, sfu, interest, hubbub_client
here = pathlib.Path.cwd().resolve()
assert pathlib.Path(world.__file__).resolve().is_relative_to(here), world.__file__
PY
