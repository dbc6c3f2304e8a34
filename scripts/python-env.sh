#!/usr/bin/env bash
# Creates (or reuses) the Python venv the end-to-end tests run in, outside the clone so later runs
# reuse it. Prints the venv path. Re-installs only when tests/e2e/requirements.txt changed.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV_DIR:-$HOME/.cache/floe/venv}
req="$here/tests/e2e/requirements.txt"
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
  echo "$want" > "$stamp"
fi
echo "$venv"
