#!/usr/bin/env bash
# Stops the apiserver started by start.sh DIR: SIGTERM, SIGKILL after 10 s; removes DIR unless --keep-data.
set -euo pipefail
dir=${1:?usage: stop.sh DIR [--keep-data]}
[ -d "$dir" ] || exit 0
if [ -f "$dir/pid" ]; then
  pid=$(cat "$dir/pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/pid"
fi
[ "${2:-}" = "--keep-data" ] || rm -rf "$dir"
