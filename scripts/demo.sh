#!/usr/bin/env bash
# Sync the bundled sample Quay registry into target-jsonl and print records per stream.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

work=$(mktemp -d)
trap 'kill "$server_pid" 2>/dev/null || true; rm -rf "$work"' EXIT

# The sample server prints its URL first; it binds 127.0.0.1 on a free port.
.venv/bin/python -m sample_quay --port 0 > "$work/server.out" &
server_pid=$!
for _ in $(seq 100); do
  url=$(head -n 1 "$work/server.out" 2>/dev/null | grep -o 'http://[^ ]*' || true)
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { echo "the sample Quay server did not start" >&2; exit 1; }

.venv/bin/python - "$url" "$work" <<'PY'
import json, sys
from sample_quay import TOKENS
url, work = sys.argv[1:]
# target-jsonl cannot use ACTIVATE_VERSION (it warns once per stream), so leave it out.
json.dump({"base_url": url, "auth_token": TOKENS["full"], "emit_activate_version_messages": False},
          open(f"{work}/tap.json", "w"))
json.dump({"destination_path": f"{work}/out", "do_timestamp_file": False},
          open(f"{work}/target.json", "w"))
PY
mkdir -p "$work/out"

echo "Syncing the sample registry at $url" >&2
.venv/bin/tap-quay --config "$work/tap.json" 2> "$work/tap.log" \
  | .venv-target-jsonl/bin/target-jsonl --config "$work/target.json" > "$work/state.json" \
  || { tail -n 20 "$work/tap.log" >&2; exit 1; }

grep -E 'WARNING|ERROR' "$work/tap.log" | sed 's/^/  /' >&2 || true
printf '\n%-26s %8s\n' stream records
for stream in user organizations organization_members robot_accounts teams team_members \
              repositories tags manifests manifest_packages manifest_vulnerabilities; do
  file="$work/out/$stream.jsonl"
  printf '%-26s %8s\n' "$stream" "$( [ -f "$file" ] && wc -l < "$file" || echo 0)"
done
