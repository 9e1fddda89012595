#!/usr/bin/env bash
# Builds the Kubernetes harness (k8s.io/kubernetes at the version in go.mod): one multi-call binary serving
# as kube-apiserver with embedded etcd, kube-controller-manager and kube-proxy (see main.go), into
#   <repo>/.cache/apiserver/kube-apiserver-<first 16 hex of sha256(go.sum + main.go)>
# and skips the build when that file exists. Prints the binary's path as its last stdout line
# (progress goes to stderr). Cold: ~6 min on 2 cores, ~1.7 GB peak memory, ~2.2 GB Go build cache;
# from a warm Go cache: tens of seconds. Needs only Go and the module proxy.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache="$root/.cache/apiserver"

key=$(cat "$here/go.sum" "$here/main.go" | sha256sum | cut -c1-16)
out="$cache/kube-apiserver-$key"

if [ ! -x "$out" ]; then
  mkdir -p "$cache"
  # One build at a time (the global test setup and a manual run may race); the loser reuses the result.
  exec 9>"$cache/.build.lock"
  flock 9
  if [ ! -x "$out" ]; then
    GO=$(command -v go || true)
    [ -n "$GO" ] || GO=/usr/local/go/bin/go
    [ -x "$GO" ] || { echo "apiserver: Go not found (PATH or /usr/local/go/bin/go)" >&2; exit 1; }
    version=$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v1\./ {print $2; exit}' "$here/go.mod")
    [ -n "$version" ] || { echo "apiserver: no k8s.io/kubernetes version in go.mod" >&2; exit 1; }
    minor=${version#v1.}; minor=${minor%%.*}
    echo "apiserver: building kube-apiserver, kube-controller-manager and kube-proxy $version into $out (cold: ~6 min on 2 cores; cached afterwards)" >&2
    start=$(date +%s)
    # -p=2 bounds parallel compiles (memory); -mod=readonly: go.mod/go.sum are the committed truth.
    # GOFLAGS from the machine (e.g. -buildvcs=false) is kept.
    # A cold build is long and go build prints nothing while it compiles: say it is alive every 30 s.
    ( while sleep 30; do echo "apiserver: still building ($(( $(date +%s) - start ))s; cold builds take 6-9 min)" >&2; done ) &
    ticker=$!
    trap 'kill $ticker 2>/dev/null || true' EXIT
    (cd "$here" && GOFLAGS="${GOFLAGS:-} -p=2 -mod=readonly" CGO_ENABLED=0 "$GO" build -trimpath -o "$out.tmp.$$" \
      -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean" \
      .) || { rm -f "$out.tmp.$$"; echo "apiserver: go build failed" >&2; exit 1; }
    kill $ticker 2>/dev/null || true
    mv "$out.tmp.$$" "$out"
    echo "apiserver: built $version in $(( $(date +%s) - start ))s ($(du -m "$out" | cut -f1) MB)" >&2
    # Builds for other keys are stale (running ones keep their inode).
    find "$cache" -maxdepth 1 -type f -name 'kube-apiserver-*' ! -name "kube-apiserver-$key" -delete 2>/dev/null || true
  fi
fi
ln -sfn "$(basename "$out")" "$cache/kube-apiserver"
echo "$out"
