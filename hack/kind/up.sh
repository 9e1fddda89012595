#!/usr/bin/env bash
# UNTESTED: written on a machine without Docker, so this recipe has been reviewed but never run.
# Needs: docker, kind >= 0.27, kubectl, node/npm (for `npm run synth` only if you change chart options),
# and either the reference CNI `bridge` plugin on this machine (Debian: containernetworking-plugins) or curl.
#
# Brings up podfabric on kind: a cluster without a CNI (hack/kind/kind-config.yaml, 2 racks x 2 workers),
# two FRR containers as the racks' top-of-rack routers on the kind Docker network, the podfabric images
# (built here unless present), crds/ and dist/ applied, an IPPool and one BGPPeer per rack, and then it
# waits until every NodeFabric and every Node is Ready.
#
#   hack/kind/up.sh          # down.sh removes everything it made
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cluster=${PODFABRIC_KIND_CLUSTER:-podfabric}
# The agent admission policy needs the node-name extra of pod-bound tokens: Kubernetes >= 1.32.
node_image=${KIND_NODE_IMAGE:-kindest/node:v1.32.2}
frr_image=${FRR_IMAGE:-quay.io/frrouting/frr:9.1.0}
version=$(node -p 'require(process.argv[1]).version' "$root/package.json")
image=ghcr.io/podfabric/podfabric:$version   # cdk8s/options.ts IMAGE_REPOSITORY:version
gobgp_image=ghcr.io/podfabric/gobgpd:3.10.0  # cdk8s/options.ts GOBGP_IMAGE
node_asn=64512                               # the chart's default FabricConfig asn
pod_supernet=10.244.0.0/16                   # kind-config.yaml podSubnet = the IPPool below
work=${TMPDIR:-/tmp}/pf-kind
declare -A tor_asn=([r1]=65101 [r2]=65102)

log() { printf '\n== %s\n' "$*"; }

log "images"
docker image inspect "$image" >/dev/null 2>&1 || docker build -t "$image" "$root"
docker image inspect "$gobgp_image" >/dev/null 2>&1 || docker build -t "$gobgp_image" --target gobgpd "$root"

log "kind cluster $cluster ($node_image)"
if ! kind get clusters | grep -qx "$cluster"; then
  kind create cluster --name "$cluster" --image "$node_image" --config "$here/kind-config.yaml"
fi
kubectl config use-context "kind-$cluster" >/dev/null
kind load docker-image --name "$cluster" "$image" "$gobgp_image"

log "ToRs (FRR) on the kind network"
subnet=$(docker network inspect kind -f '{{range .IPAM.Config}}{{.Subnet}} {{end}}' | tr ' ' '\n' | grep -m1 '\.')
mkdir -p "$work"
for rack in r1 r2; do
  name=pf-kind-tor-$rack
  mkdir -p "$work/$name"
  cat >"$work/$name/daemons" <<'DAEMONS'
zebra=yes
bgpd=yes
staticd=no
vtysh_enable=yes
zebra_options="  -A 127.0.0.1 -s 90000000"
bgpd_options="   -A 127.0.0.1"
DAEMONS
  printf 'frr defaults datacenter\nhostname %s\n' "$name" >"$work/$name/frr.conf"
  : >"$work/$name/vtysh.conf"
  if ! docker inspect "$name" >/dev/null 2>&1; then
    # zebra installs the BGP routes in the container's kernel FIB and the container forwards between racks.
    docker run -d --name "$name" --network kind --cap-add NET_ADMIN --cap-add NET_RAW --cap-add SYS_ADMIN \
      --sysctl net.ipv4.ip_forward=1 --sysctl net.ipv4.conf.all.rp_filter=0 \
      -v "$work/$name:/etc/frr" "$frr_image" >/dev/null
  fi
done
tor_ip() { docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "pf-kind-tor-$1"; }
declare -A ip=([r1]=$(tor_ip r1) [r2]=$(tor_ip r2))
for rack in r1 r2; do
  other=$([ "$rack" = r1 ] && echo r2 || echo r1)
  name=pf-kind-tor-$rack
  sed -e "s|@NAME@|$name|" -e "s|@TOR_ASN@|${tor_asn[$rack]}|" -e "s|@ROUTER_ID@|${ip[$rack]}|" \
    -e "s|@NODE_ASN@|$node_asn|" -e "s|@NODE_SUBNET@|$subnet|" \
    -e "s|@OTHER_TOR_IP@|${ip[$other]}|g" -e "s|@OTHER_TOR_ASN@|${tor_asn[$other]}|" \
    "$here/frr.conf.tmpl" >"$work/$name/frr.conf"
  # The daemons may still be starting: retry loading the configuration for a while.
  for _ in $(seq 30); do docker exec "$name" vtysh -f /etc/frr/frr.conf >/dev/null 2>&1 && break; sleep 1; done
  echo "$name: ${ip[$rack]} AS ${tor_asn[$rack]}"
done

log "nodes: pod traffic to other racks goes to the rack's ToR"
# podfabric installs host-gw routes inside a rack; anything else in the pod range goes to the ToR, which
# learned each node's block by BGP. (On real racks the ToR is the nodes' default gateway anyway.)
for n in $(kind get nodes --name "$cluster"); do
  rack=$(kubectl get node "$n" -o jsonpath='{.metadata.labels.podfabric\.io/rack}')
  docker exec "$n" ip route replace "$pod_supernet" via "${ip[$rack]}"
done

log "CNI plugins: kind's node image ships host-local, loopback, portmap and ptp; podfabric's conflist also needs bridge"
cni_version=${CNI_PLUGINS_VERSION:-v1.6.2}
bridge=""
for b in /usr/lib/cni/bridge /opt/cni/bin/bridge; do [ -x "$b" ] && bridge=$b && break; done
if [ -z "$bridge" ]; then
  arch=$(uname -m | sed -e 's/x86_64/amd64/' -e 's/aarch64/arm64/')
  mkdir -p "$work/cni"
  curl -fsSL "https://github.com/containernetworking/plugins/releases/download/$cni_version/cni-plugins-linux-$arch-$cni_version.tgz" | tar -xz -C "$work/cni" ./bridge
  bridge=$work/cni/bridge
fi
for n in $(kind get nodes --name "$cluster"); do
  docker exec "$n" test -x /opt/cni/bin/bridge || docker cp "$bridge" "$n:/opt/cni/bin/bridge"
done

log "podfabric: crds/ then dist/"
kubectl apply --server-side -f "$root/crds/"
kubectl wait --for=condition=Established crd -l app.kubernetes.io/part-of=podfabric --timeout=60s
kubectl apply --server-side -f "$root/dist/"

log "IPPool and BGPPeers"
{
  printf 'apiVersion: podfabric.io/v1alpha1\nkind: IPPool\nmetadata: {name: kind-pods}\nspec: {cidr: %s, blockSize: 24}\n' "$pod_supernet"
  for rack in r1 r2; do
    printf -- '---\napiVersion: podfabric.io/v1alpha1\nkind: BGPPeer\nmetadata: {name: tor-%s}\n' "$rack"
    printf 'spec:\n  peerAddress: %s\n  peerASN: %s\n' "${ip[$rack]}" "${tor_asn[$rack]}"
    printf '  nodeSelector: {matchLabels: {podfabric.io/rack: %s}}\n' "$rack"
    printf '  timers: {holdTime: 9, keepaliveInterval: 3, connectRetry: 1}\n'
  done
} | kubectl apply --server-side -f -

log "waiting for the fabric"
kubectl -n podfabric-system rollout status deployment/podfabric-controller --timeout=180s
kubectl -n podfabric-system rollout status daemonset/podfabric-agent --timeout=300s
kubectl wait --for=condition=Ready nodefabrics --all --timeout=300s
kubectl wait --for=condition=Ready nodes --all --timeout=300s
kubectl get nodefabrics,bgppeers,ippools
for rack in r1 r2; do docker exec "pf-kind-tor-$rack" vtysh -c 'show bgp ipv4 unicast summary'; done
echo "podfabric is up on kind-$cluster; hack/kind/down.sh removes it"
