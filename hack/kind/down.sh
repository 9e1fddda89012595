#!/usr/bin/env bash
# UNTESTED: written on a machine without Docker, so this recipe has been reviewed but never run.
# Removes what hack/kind/up.sh made: the kind cluster, the two FRR ToR containers and their config dir.
# The images stay (docker image rm them yourself).
set -euo pipefail
cluster=${PODFABRIC_KIND_CLUSTER:-podfabric}
kind delete cluster --name "$cluster"
docker rm -f pf-kind-tor-r1 pf-kind-tor-r2 >/dev/null 2>&1 || true
rm -rf "${TMPDIR:-/tmp}/pf-kind"
