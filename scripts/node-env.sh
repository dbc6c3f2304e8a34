#!/usr/bin/env bash
# Installs (once) the Node test tools — Azurite, the Azure Blob emulator — under
# ~/.cache/floe/node and prints that directory. Reinstalls when the pinned versions change.
set -euo pipefail
dir=${NODE_ENV_DIR:-$HOME/.cache/floe/node}
want="azurite@3.37.0"
if [ "$(cat "$dir/.installed" 2>/dev/null)" != "$want" ]; then
  mkdir -p "$dir"
  (cd "$dir" && npm install --no-audit --no-fund --silent --save-exact $want >&2)
  echo "$want" > "$dir/.installed"
fi
echo "$dir"
