#!/usr/bin/env bash
# Starts a real kube-apiserver with embedded etcd on 127.0.0.1 for tests and the lab.
#   start.sh DIR [--fresh]
# DIR gets: kubeconfig (admin token, system:masters), pid, port, apiserver.log, certs/, data/.
# Restarting with the same DIR keeps the data and the port (the kubeconfig stays valid);
# --fresh wipes both. Waits until /readyz answers (90 s), else prints the log tail and fails.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:?usage: start.sh DIR [--fresh]}
fresh=${2:-}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
bin=$(bash "$here/build.sh" | tail -n1)

# Leftovers of a killed run on this DIR: stop that apiserver first.
if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
  kill "$(cat "$dir/pid")" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$(cat "$dir/pid")" 2>/dev/null || break; sleep 0.2; done
  kill -9 "$(cat "$dir/pid")" 2>/dev/null || true
fi
rm -f "$dir/pid"
if [ "$fresh" = "--fresh" ]; then rm -rf "$dir/data" "$dir/port"; fi

if [ -f "$dir/port" ] && ! (exec 3<>/dev/tcp/127.0.0.1/"$(cat "$dir/port")") 2>/dev/null; then
  port=$(cat "$dir/port")
else
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
fi
echo "$port" > "$dir/port"

mkdir -p "$dir/certs" "$dir/data"
[ -f "$dir/sa.key" ] || openssl genrsa -out "$dir/sa.key" 2048 2>/dev/null
[ -f "$dir/token" ] || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$dir/token"
token=$(cat "$dir/token")
echo "$token,podfabric-admin,podfabric-admin,system:masters" > "$dir/tokens.csv"

setsid "$bin" \
  --etcd-data-dir="$dir/data" \
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$port" \
  --cert-dir="$dir/certs" \
  --token-auth-file="$dir/tokens.csv" \
  --authorization-mode=Node,RBAC \
  --service-account-issuer=https://kubernetes.default.svc \
  --service-account-key-file="$dir/sa.key" --service-account-signing-key-file="$dir/sa.key" \
  --service-cluster-ip-range=10.96.0.0/16 \
  --disable-admission-plugins=ServiceAccount \
  --endpoint-reconciler-type=none \
  --max-requests-inflight=2000 --max-mutating-requests-inflight=1000 \
  --profiling=false \
  --v=0 >"$dir/apiserver.log" 2>&1 < /dev/null &
echo $! > "$dir/pid"

ca=""
for _ in $(seq 1 900); do
  if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
    echo "apiserver exited during start; log tail:" >&2; tail -n 40 "$dir/apiserver.log" >&2; exit 1
  fi
  if [ -z "$ca" ] && [ -f "$dir/certs/apiserver.crt" ]; then ca=$(base64 -w0 < "$dir/certs/apiserver.crt"); fi
  if [ -n "$ca" ] && [ "$(curl -sk -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "https://127.0.0.1:$port/readyz")" = 200 ]; then
    cat > "$dir/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: podfabric-test
  cluster:
    server: https://127.0.0.1:$port
    certificate-authority-data: $ca
users:
- name: podfabric-admin
  user:
    token: $token
contexts:
- name: podfabric-test
  context: {cluster: podfabric-test, user: podfabric-admin}
current-context: podfabric-test
KC
    echo "apiserver ready on https://127.0.0.1:$port (kubeconfig: $dir/kubeconfig)" >&2
    exit 0
  fi
  sleep 0.1
done
echo "apiserver not ready after 90s; log tail:" >&2; tail -n 40 "$dir/apiserver.log" >&2
exit 1
