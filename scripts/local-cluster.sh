#!/usr/bin/env bash
# A local stompbox cluster to try out: a private redis-server, three nodes on
# consecutive ports (REDIS_URL set) and nginx in front (deploy/nginx.conf).
# Logs go to a temp dir; Ctrl-C stops everything.
#
#   scripts/local-cluster.sh                 # nginx on :8080, nodes on :8081-8083
#   LB_PORT=9000 BASE_PORT=9001 NODES=3 scripts/local-cluster.sh
#   LB_HOST=0.0.0.0 AUTH_MODE=static AUTH_USERS=... scripts/local-cluster.sh   # nginx on every interface
#
# nginx listens on 127.0.0.1 unless LB_HOST says otherwise; with open-mode
# nodes (AUTH_MODE unset or open) another address needs ALLOW_OPEN_PUBLIC=true,
# as a node's own bind address does.
#
# Needs redis-server and nginx (Debian: apt-get install -y redis-server nginx;
# run as root, this script installs what is missing) and `npm ci` done.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
LB_PORT="${LB_PORT:-8080}"
LB_HOST="${LB_HOST:-127.0.0.1}"
BASE_PORT="${BASE_PORT:-8081}"
NODES="${NODES:-3}"
REDIS_PORT="${REDIS_PORT:-6391}"
READY_TIMEOUT_S="${READY_TIMEOUT_S:-30}"
# One cookie key for every node: a login on one node is valid on the others.
SESSION_SECRET="${SESSION_SECRET:-$(head -c 32 /dev/urandom | base64 | tr -d '\n')}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/stompbox-cluster.XXXXXX")"

say() { printf 'local-cluster: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# ---- prerequisites ---------------------------------------------------------------
need() { # need COMMAND DEBIAN_PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  [[ -x "/usr/sbin/$1" ]] && return 0
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    say "installing $2 with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >"$WORK/apt-$2.log" 2>&1 ||
      { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >"$WORK/apt-$2.log" 2>&1; } ||
      die "could not install $2 (see $WORK/apt-$2.log)"
  else
    die "$1 not found: install it (Debian: sudo apt-get install -y $2)"
  fi
}
case "$LB_HOST" in
  127.0.0.1 | localhost | ::1) ;;
  *)
    if [[ "${AUTH_MODE:-open}" == open && "${ALLOW_OPEN_PUBLIC:-false}" != true ]]; then
      die "LB_HOST=$LB_HOST would put open-mode nodes (any login, no password) on the network: set AUTH_MODE=static|jwt, or ALLOW_OPEN_PUBLIC=true to force it"
    fi
    ;;
esac
need redis-server redis-server
need nginx nginx
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
[[ -d "$ROOT/node_modules/tsx" ]] || die "run npm ci in $ROOT first"

# ---- process bookkeeping -----------------------------------------------------------
PIDS=()
NAMES=()
stopping=0
cleanup() {
  (( stopping )) && return
  stopping=1
  say "stopping..."
  # Nodes first (graceful: they leave the cluster), then nginx and redis.
  for i in "${!PIDS[@]}"; do
    kill -TERM "${PIDS[$i]}" 2>/dev/null || true
  done
  for i in "${!PIDS[@]}"; do
    wait "${PIDS[$i]}" 2>/dev/null || true
  done
  say "stopped; logs are in $WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start() { # start NAME LOGFILE COMMAND...
  local name="$1" log="$2"
  shift 2
  "$@" >"$log" 2>&1 &
  PIDS+=("$!")
  NAMES+=("$name")
}

# Waits for an HTTP URL to answer 2xx, or the process to die, within READY_TIMEOUT_S.
wait_http() { # wait_http NAME URL PID LOG
  local deadline=$((SECONDS + READY_TIMEOUT_S))
  until curl -fsS -o /dev/null --max-time 2 "$2" 2>/dev/null; do
    kill -0 "$3" 2>/dev/null || die "$1 exited; its log ($4) ends with: $(tail -n 3 "$4" | tr '\n' ' ')"
    ((SECONDS < deadline)) || die "$1 not ready at $2 within ${READY_TIMEOUT_S}s (log: $4)"
    sleep 0.2
  done
}

# ---- redis -----------------------------------------------------------------------
start redis "$WORK/redis.log" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$WORK" \
  --save '' --appendonly no --daemonize no
REDIS_PID="${PIDS[-1]}"
deadline=$((SECONDS + READY_TIMEOUT_S))
until [[ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; do
  kill -0 "$REDIS_PID" 2>/dev/null || die "redis-server exited: $(tail -n 3 "$WORK/redis.log" | tr '\n' ' ')"
  ((SECONDS < deadline)) || die "redis-server not answering on :$REDIS_PORT"
  sleep 0.1
done
say "redis on 127.0.0.1:$REDIS_PORT"

# ---- nodes -----------------------------------------------------------------------
for ((i = 1; i <= NODES; i++)); do
  port=$((BASE_PORT + i - 1))
  start "node-$i" "$WORK/node-$i.log" env PORT="$port" HOST=127.0.0.1 NODE_ID="node-$i" \
    REDIS_URL="redis://127.0.0.1:$REDIS_PORT" SESSION_SECRET="$SESSION_SECRET" LOG_LEVEL="${LOG_LEVEL:-info}" \
    node --import tsx "$ROOT/lib/main.ts"
done
for ((i = 1; i <= NODES; i++)); do
  idx=$((i)) # PIDS[0] is redis
  wait_http "node-$i" "http://127.0.0.1:$((BASE_PORT + i - 1))/readyz" "${PIDS[$idx]}" "$WORK/node-$i.log"
  say "node-$i on 127.0.0.1:$((BASE_PORT + i - 1))"
done

# ---- nginx -----------------------------------------------------------------------
# deploy/nginx.conf, with its example ports replaced by ours; the upstreams list NODES servers.
servers=""
for ((i = 1; i <= NODES; i++)); do
  servers+="    server 127.0.0.1:$((BASE_PORT + i - 1)) max_fails=3 fail_timeout=10s;\n"
done
awk -v servers="$servers" -v lb="$LB_PORT" -v lbhost="$LB_HOST" '
  /^ *server 127\.0\.0\.1:808[0-9] / { if (!printed[block]) { printf "%s", servers; printed[block] = 1 } next }
  /^upstream / { block++ }
  { sub(/listen 127\.0\.0\.1:8080;/, "listen " (lbhost ~ /:/ ? "[" lbhost "]" : lbhost) ":" lb ";"); print }
' "$ROOT/deploy/nginx.conf" >"$WORK/stompbox.conf"

mkdir -p "$WORK/nginx-tmp"
chmod 0777 "$WORK/nginx-tmp" # workers run as an unprivileged user when started as root
cat >"$WORK/nginx.conf" <<EOF
# Generated by scripts/local-cluster.sh
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 1024; }
http {
    access_log $WORK/nginx-access.log;
    client_body_temp_path $WORK/nginx-tmp/body;
    proxy_temp_path $WORK/nginx-tmp/proxy;
    fastcgi_temp_path $WORK/nginx-tmp/fastcgi;
    uwsgi_temp_path $WORK/nginx-tmp/uwsgi;
    scgi_temp_path $WORK/nginx-tmp/scgi;
    include $WORK/stompbox.conf;
}
EOF
"$NGINX" -t -q -p "$WORK" -e "$WORK/nginx-error.log" -c "$WORK/nginx.conf" ||
  die "nginx rejected the configuration ($WORK/nginx.conf, $WORK/stompbox.conf)"
start nginx "$WORK/nginx.log" "$NGINX" -p "$WORK" -e "$WORK/nginx-error.log" -c "$WORK/nginx.conf" -g 'daemon off;'
wait_http nginx "http://127.0.0.1:$LB_PORT/healthz" "${PIDS[-1]}" "$WORK/nginx-error.log"

cat >&2 <<EOF

  stompbox cluster: $NODES nodes behind nginx, Redis at 127.0.0.1:$REDIS_PORT
    chat   http://127.0.0.1:$LB_PORT/
    admin  http://127.0.0.1:$LB_PORT/admin.html
    CLI    npx stompbox tail --url http://127.0.0.1:$LB_PORT --user bob /user/queue/reply
           npx stompbox send --url http://127.0.0.1:$LB_PORT --user alice --to bob -d /queue/reply "hi"
    nodes  $(for ((i = 1; i <= NODES; i++)); do printf 'http://127.0.0.1:%s ' $((BASE_PORT + i - 1)); done)
    logs   $WORK
  Ctrl-C stops everything.

EOF

# Runs until Ctrl-C, or until one of the processes dies (then everything stops).
set +e
wait -n "${PIDS[@]}"
status=$?
if ((!stopping)); then
  for i in "${!PIDS[@]}"; do
    if ! kill -0 "${PIDS[$i]}" 2>/dev/null; then say "${NAMES[$i]} exited ($status); stopping the rest"; fi
  done
fi
exit "$status"
