# Sourced by start.sh and stop.sh (bash, set -euo pipefail).

# Pids of the apiservers serving DIR (absolute, as start.sh resolved it): every process whose
# command line has --etcd-data-dir=DIR/data. Found by command line rather than trusted from
# DIR/pid: that covers a lost pid file, and a stale one whose number now belongs to another
# process never gets that process killed.
dir_pids() {
  local want=$'\001'"--etcd-data-dir=$1/data"$'\001' p cmd
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    # (bash matching, not grep: a grep would carry the pattern in its own command line)
    cmd=$(tr '\0' '\001' 2>/dev/null < "/proc/$p/cmdline") || continue
    [[ $'\001'"$cmd" == *"$want"* ]] && echo "$p"
  done
  return 0
}

# Alive and not a zombie (a zombie answers kill -0 until its parent reaps it).
alive() {
  local st
  st=$(sed -n 's/^[0-9]* (.*) \([A-Z]\).*/\1/p' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# SIGTERM to every apiserver of DIR, SIGKILL to those still alive 10 s later; returns once all are gone.
stop_dir_processes() {
  local dir=$1 pids p i left
  pids=$(dir_pids "$dir")
  [ -n "$pids" ] || return 0
  for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
  for i in $(seq 1 100); do
    left=""
    for p in $pids; do alive "$p" && left="$left $p"; done
    [ -n "$left" ] || return 0
    sleep 0.1
  done
  echo "apiserver on $dir: no exit 10 s after SIGTERM; SIGKILL$left" >&2
  for p in $left; do kill -KILL "$p" 2>/dev/null || true; done
  for i in $(seq 1 50); do
    left=""
    for p in $pids; do alive "$p" && left="$left $p"; done
    [ -n "$left" ] || return 0
    sleep 0.1
  done
  echo "apiserver on $dir: pids$left survive SIGKILL" >&2
  return 1
}
