#!/usr/bin/env bash
# Regenerates go.mod for a Kubernetes version: every staging module k8s.io/kubernetes requires at
# v0.0.0 is replaced by its published v0.MINOR.PATCH. Usage: gen-gomod.sh v1.34.4
set -euo pipefail
cd "$(dirname "$0")"
v=${1:?usage: gen-gomod.sh v1.X.Y}
staging="v0.${v#v1.}"
mod=$(curl -fsS "https://proxy.golang.org/k8s.io/kubernetes/@v/${v}.mod")
etcd=$(grep -E '^\s+go.etcd.io/etcd/server/v3 ' <<<"$mod" | awk '{print $2}')
{
  echo "module podfabric.dev/hack/apiserver"
  echo
  echo "go 1.24.0"
  echo
  echo "require ("
  echo "	go.etcd.io/etcd/server/v3 ${etcd}"
  echo "	k8s.io/component-base ${staging}"
  echo "	k8s.io/kubernetes ${v}"
  echo ")"
  echo
  echo "replace ("
  grep -E '^\s+k8s.io/[a-z0-9-]+ => ./staging/' <<<"$mod" | awk -v s="$staging" '{print "\t" $1 " => " $1 " " s}'
  echo ")"
} > go.mod
echo "$v" > K8S_VERSION
go mod tidy
