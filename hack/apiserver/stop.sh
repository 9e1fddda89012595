#!/usr/bin/env bash
# Stops the apiserver that start.sh DIR started: SIGTERM, SIGKILL after 10 s; then removes DIR
# unless --keep-data. Idempotent: a missing DIR or an already stopped apiserver is fine.
#   stop.sh DIR [--keep-data]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
usage="usage: stop.sh DIR [--keep-data]"
dir=${1:?$usage}
keep=false
case "${2:-}" in
  "") ;;
  --keep-data) keep=true ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
[ -d "$dir" ] || exit 0
dir=$(cd "$dir" && pwd -P)
# shellcheck source=lib.sh
. "$here/lib.sh"
stop_dir_processes "$dir"
rm -f "$dir/pid"
$keep && exit 0
# Remove what start.sh put there; DIR itself only if nothing else is in it (never wipe a
# directory passed by mistake).
ours=(kubeconfig kubeconfig.tmp flags pid port token tokens.csv sa.key apiserver.log certs data)
for f in "${ours[@]}"; do rm -rf "${dir:?}/$f"; done
if ! rmdir "$dir" 2>/dev/null; then
  echo "stop.sh: left $dir in place: it holds files start.sh did not create" >&2
fi
