#!/usr/bin/env bash
# Builds kube-apiserver (k8s.io/kubernetes, version in K8S_VERSION) with embedded etcd, into
# .cache/apiserver/kube-apiserver-<hash of go.sum + main.go>. Skips the build when that file exists.
# Prints the binary's path as its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
version=$(cat "$here/K8S_VERSION")
key=$(cat "$here/go.sum" "$here/go.mod" "$here/main.go" "$here/K8S_VERSION" | sha256sum | cut -c1-16)
out="$root/.cache/apiserver/kube-apiserver-$key"
if [ ! -x "$out" ]; then
  mkdir -p "$root/.cache/apiserver"
  echo "apiserver: building kube-apiserver $version (first time: ~6 min on 2 cores; cached afterwards)" >&2
  start=$(date +%s)
  minor=${version#v1.}; minor=${minor%%.*}
  (cd "$here" && go build -trimpath -o "$out.tmp" \
    -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor" .)
  mv "$out.tmp" "$out"
  echo "apiserver: built in $(( $(date +%s) - start ))s" >&2
  # Old builds of other keys are garbage.
  find "$root/.cache/apiserver" -maxdepth 1 -name 'kube-apiserver-*' ! -name "kube-apiserver-$key" -delete 2>/dev/null || true
fi
ln -sfn "$(basename "$out")" "$root/.cache/apiserver/kube-apiserver"
echo "$out"
