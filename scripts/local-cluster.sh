#!/usr/bin/env bash
# A local stompbox cluster to try out: a private redis-server, three nodes on
# consecutive ports (REDIS_URL set) and nginx in front (deploy/nginx.conf).
# Logs go to a temp dir; Ctrl-C stops everything.
#
#   scripts/local-cluster.sh                 # nginx on :8080, nodes on :8081-8083
#   scripts/local-cluster.sh --redis-cluster # a 3-master, 3-replica Redis Cluster on :6391-6396 (REDIS_CLUSTER_NODES)
#   scripts/local-cluster.sh --sentinel      # primary :6391, replica :6392, sentinels :6393-6395 (REDIS_SENTINELS)
#   LB_PORT=9000 BASE_PORT=9001 NODES=3 scripts/local-cluster.sh
#   LB_HOST=0.0.0.0 AUTH_MODE=static AUTH_USERS=... scripts/local-cluster.sh   # nginx on every interface
#   (npm run cluster -- --redis-cluster passes the flag through.)
#
# nginx listens on 127.0.0.1 unless LB_HOST says otherwise; with open-mode
# nodes (AUTH_MODE unset or open) another address needs ALLOW_OPEN_PUBLIC=true,
# as a node's own bind address does.
#
# Needs redis-server and nginx (Debian: apt-get install -y redis-server nginx;
# run as root, this script installs what is missing) and `npm ci` done.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
REDIS_MODE=single
for arg in "$@"; do
  case "$arg" in
    --redis-cluster) REDIS_MODE=cluster ;;
    --sentinel) REDIS_MODE=sentinel ;;
    *) printf 'local-cluster: unknown argument %s (known: --redis-cluster, --sentinel)\n' "$arg" >&2; exit 2 ;;
  esac
done
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
NODE_PIDS=()
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
# Waits until `redis-cli -p PORT CMD...` prints something matching PATTERN.
wait_redis() { # wait_redis WHAT PORT PATTERN CMD...
  local what="$1" port="$2" pattern="$3" deadline=$((SECONDS + READY_TIMEOUT_S))
  shift 3
  until redis-cli -p "$port" "$@" 2>/dev/null | grep -q "$pattern"; do
    ((SECONDS < deadline)) || die "$what: redis on :$port did not answer '$*' with $pattern within ${READY_TIMEOUT_S}s (logs: $WORK)"
    sleep 0.1
  done
}
redis_server() { # redis_server NAME PORT EXTRA_ARGS...: one redis-server, its data in $WORK/NAME
  local name="$1" port="$2"
  shift 2
  mkdir -p "$WORK/$name"
  start "$name" "$WORK/$name.log" redis-server --port "$port" --bind 127.0.0.1 --dir "$WORK/$name" \
    --save '' --daemonize no "$@"
  wait_redis "$name" "$port" PONG ping
}
# Persistence and replication as ARCHITECTURE.md describes them for the replicated modes.
REPLICATED=(--appendonly yes --appendfsync everysec --repl-diskless-sync-delay 0)
case "$REDIS_MODE" in
  single)
    redis_server redis "$REDIS_PORT" --appendonly no
    REDIS_ENV=(REDIS_URL="redis://127.0.0.1:$REDIS_PORT")
    REDIS_SAYS="Redis at 127.0.0.1:$REDIS_PORT"
    ;;
  cluster)
    seeds=()
    for ((r = 0; r < 6; r++)); do
      redis_server "redis-$r" $((REDIS_PORT + r)) "${REPLICATED[@]}" --cluster-enabled yes --cluster-config-file nodes.conf \
        --cluster-node-timeout 2000
      seeds+=("127.0.0.1:$((REDIS_PORT + r))")
    done
    redis-cli --cluster create "${seeds[@]}" --cluster-replicas 1 --cluster-yes >"$WORK/cluster-create.log" 2>&1 ||
      die "redis-cli --cluster create failed: $(tail -n 3 "$WORK/cluster-create.log" | tr '\n' ' ')"
    for ((r = 0; r < 6; r++)); do wait_redis cluster $((REDIS_PORT + r)) 'cluster_state:ok' cluster info; done
    REDIS_ENV=(REDIS_CLUSTER_NODES="$(IFS=,; echo "${seeds[*]}")")
    REDIS_SAYS="a Redis Cluster on 127.0.0.1:$REDIS_PORT-$((REDIS_PORT + 5)) (3 masters, 3 replicas)"
    ;;
  sentinel)
    redis_server redis-primary "$REDIS_PORT" "${REPLICATED[@]}"
    redis_server redis-replica $((REDIS_PORT + 1)) "${REPLICATED[@]}" --replicaof 127.0.0.1 "$REDIS_PORT"
    wait_redis replica $((REDIS_PORT + 1)) 'master_link_status:up' info replication
    sentinels=()
    for ((r = 0; r < 3; r++)); do
      port=$((REDIS_PORT + 2 + r))
      mkdir -p "$WORK/sentinel-$r"
      # Sentinel rewrites its config file with what it learns: one writable file each.
      printf '%s\n' "port $port" 'bind 127.0.0.1' "dir $WORK/sentinel-$r" \
        "sentinel monitor stompbox 127.0.0.1 $REDIS_PORT 2" 'sentinel down-after-milliseconds stompbox 5000' \
        'sentinel failover-timeout stompbox 30000' >"$WORK/sentinel-$r/sentinel.conf"
      start "sentinel-$r" "$WORK/sentinel-$r.log" redis-server "$WORK/sentinel-$r/sentinel.conf" --sentinel
      wait_redis "sentinel-$r" "$port" PONG ping
      sentinels+=("127.0.0.1:$port")
    done
    REDIS_ENV=(REDIS_SENTINELS="$(IFS=,; echo "${sentinels[*]}")" REDIS_SENTINEL_NAME=stompbox)
    REDIS_SAYS="a Redis primary on 127.0.0.1:$REDIS_PORT, its replica on :$((REDIS_PORT + 1)), sentinels ${sentinels[*]} (name stompbox)"
    ;;
esac
say "$REDIS_SAYS"

# ---- nodes -----------------------------------------------------------------------
for ((i = 1; i <= NODES; i++)); do
  port=$((BASE_PORT + i - 1))
  start "node-$i" "$WORK/node-$i.log" env PORT="$port" HOST=127.0.0.1 NODE_ID="node-$i" \
    "${REDIS_ENV[@]}" SESSION_SECRET="$SESSION_SECRET" LOG_LEVEL="${LOG_LEVEL:-info}" \
    node --import tsx "$ROOT/lib/main.ts"
  NODE_PIDS+=("${PIDS[-1]}")
done
for ((i = 1; i <= NODES; i++)); do
  wait_http "node-$i" "http://127.0.0.1:$((BASE_PORT + i - 1))/readyz" "${NODE_PIDS[$((i - 1))]}" "$WORK/node-$i.log"
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

  stompbox cluster: $NODES nodes behind nginx, $REDIS_SAYS
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
