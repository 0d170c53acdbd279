#!/usr/bin/env bash
# Create the two virtual environments the project uses, or bring them up to date:
#   .venv             tap-quay, the sample Quay server and the development tools
#   .venv-target-jsonl target-jsonl, which pins old libraries that clash with singer-sdk,
#                      so it lives apart, as Meltano would install it.
#   .venv-meltano      Meltano itself; `meltano install` then puts each plugin of
#                      meltano.yml (tap-quay, target-jsonl, target-postgres) in its own
#                      environment under .meltano/.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
"$python" - <<'PY' || { echo "tap-quay needs Python 3.10 or newer (set PYTHON=...)" >&2; exit 1; }
import sys
sys.exit(sys.version_info < (3, 10))
PY

quiet=(--quiet --disable-pip-version-check)
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/pip install "${quiet[@]}" -e '.[dev]'

if [ ! -x .venv-target-jsonl/bin/target-jsonl ]; then
  "$python" -m venv .venv-target-jsonl
  .venv-target-jsonl/bin/pip install "${quiet[@]}" 'target-jsonl==0.1.4'
fi

if [ ! -x .venv-meltano/bin/meltano ]; then
  "$python" -m venv .venv-meltano
  .venv-meltano/bin/pip install "${quiet[@]}" 'meltano==4.4.1'
fi
# Every plugin is declared in full in meltano.yml, so this asks PyPI only, never the Hub.
MELTANO_SEND_ANONYMOUS_USAGE_STATS=false .venv-meltano/bin/meltano --log-level=warning install
