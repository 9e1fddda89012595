#!/usr/bin/env bash
# Starts a real kube-apiserver (embedded etcd) in the background, listening only on 127.0.0.1.
#   start.sh DIR [--fresh] [--apiserver-flag=value ...]
# Extra kube-apiserver flags come after the defaults below (a later value of the same flag wins) and are
# kept in DIR/flags: a restart without flags reuses them (the lab advertises its control-plane address
# and turns the endpoint reconciler on this way).
# DIR gets: kubeconfig (admin token in system:masters), pid, port, token, tokens.csv, sa.key,
# apiserver.log, certs/ (self-signed apiserver.crt = the kubeconfig's CA), data/ (etcd).
# Restarting on the same DIR keeps data/ and the port, so the kubeconfig stays valid; --fresh wipes
# the data and picks a new port. An apiserver still running on DIR (killed test run, stale pid file)
# is stopped first. Waits up to 90 s for /readyz = 200, else prints the log tail and exits 1.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
usage="usage: start.sh DIR [--fresh] [--apiserver-flag=value ...]"
dir=${1:?$usage}
shift
fresh=false
extra=()
for a in "$@"; do
  case "$a" in
    --fresh) fresh=true ;;
    --*=*) extra+=("$a") ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
mkdir -p "$dir"
dir=$(cd "$dir" && pwd -P)
if ((${#extra[@]})); then printf '%s\n' "${extra[@]}" > "$dir/flags"
elif $fresh; then rm -f "$dir/flags"
elif [ -f "$dir/flags" ]; then mapfile -t extra < "$dir/flags"
fi

bin=$(bash "$here/build.sh" | tail -n1)
[ -x "$bin" ] || { echo "start.sh: build.sh gave no binary" >&2; exit 1; }

# --- leftovers: any apiserver serving this DIR (from the pid file, or found by its data dir) ---
# shellcheck source=lib.sh
. "$here/lib.sh"
stop_dir_processes "$dir"
rm -f "$dir/pid"
if $fresh; then rm -rf "$dir/data" "$dir/port" "$dir/kubeconfig"; fi

# --- port: reuse DIR/port if it is free, else a new free one ---
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})' 2>/dev/null ||
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
port=""
if [ -f "$dir/port" ]; then
  old=$(cat "$dir/port")
  if [[ "$old" =~ ^[0-9]+$ ]] && port_free "$old"; then port=$old
  else echo "start.sh: port $old of $dir is taken; using a new one (the old kubeconfig is invalid)" >&2; fi
fi
[ -n "$port" ] || port=$(free_port)
echo "$port" > "$dir/port"

# --- credentials ---
mkdir -p "$dir/certs" "$dir/data"
[ -s "$dir/sa.key" ] || openssl genrsa -out "$dir/sa.key" 2048 2>/dev/null
[ -s "$dir/token" ] || (umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$dir/token")
token=$(cat "$dir/token")
(umask 077; echo "$token,podfabric-admin,podfabric-admin,system:masters" > "$dir/tokens.csv")

# --- start ---
echo "=== start.sh $(date -Is) port $port" >> "$dir/apiserver.log"
logfrom=$(stat -c %s "$dir/apiserver.log")
t0=$(date +%s%N)
# setsid: own process group and session, so a Ctrl-C of the caller's terminal does not hit it
# (stop.sh or the test teardown stops it).
setsid "$bin" \
  --etcd-data-dir="$dir/data" \
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$port" \
  --cert-dir="$dir/certs" \
  --token-auth-file="$dir/tokens.csv" \
  --authorization-mode=Node,RBAC \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$dir/sa.key" --service-account-signing-key-file="$dir/sa.key" \
  --service-cluster-ip-range=10.96.0.0/16 \
  --disable-admission-plugins=ServiceAccount \
  --endpoint-reconciler-type=none \
  --max-requests-inflight=2000 --max-mutating-requests-inflight=1000 \
  --profiling=false \
  --v=0 ${extra[@]+"${extra[@]}"} >>"$dir/apiserver.log" 2>&1 </dev/null &
pid=$!
echo "$pid" > "$dir/pid"

fail() {
  echo "start.sh: $1; apiserver log tail ($dir/apiserver.log):" >&2
  tail -c +"$((logfrom + 1))" "$dir/apiserver.log" | tail -n 40 >&2
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$dir/pid"
  exit 1
}

deadline=$((SECONDS + 90))
while :; do
  kill -0 "$pid" 2>/dev/null || fail "kube-apiserver exited during start"
  if [ -s "$dir/certs/apiserver.crt" ] &&
     [ "$(curl -sk -m 2 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "https://127.0.0.1:$port/readyz" || true)" = 200 ]; then
    break
  fi
  [ $SECONDS -lt $deadline ] || fail "kube-apiserver not ready after 90 s"
  sleep 0.1
done

ca=$(base64 -w0 < "$dir/certs/apiserver.crt")
cat > "$dir/kubeconfig.tmp" <<KC
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
chmod 600 "$dir/kubeconfig.tmp"
mv "$dir/kubeconfig.tmp" "$dir/kubeconfig"
echo "apiserver ready on https://127.0.0.1:$port in $(( ($(date +%s%N) - t0) / 1000000 )) ms (pid $pid, kubeconfig $dir/kubeconfig)" >&2
