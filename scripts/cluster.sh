#!/usr/bin/env bash
# A smartglass-edge cluster on this machine: redis-server (deploy/redis/redis.conf), N sg-edge
# instances on loopback ports sharing it, and nginx (deploy/nginx/sg-edge.conf) in front with TLS
# (a self-signed certificate made on the spot), HTTP/2 and HTTP/1.1. Every process runs as the
# calling user with its files under one folder; `down` stops exactly the processes `up` started.
#
#   scripts/cluster.sh up        # start; prints the URL and the CA file for clients
#   scripts/cluster.sh status    # each process: pid, port, running or not
#   scripts/cluster.sh down      # stop them (nginx, then the instances gracefully, then Redis)
#   scripts/cluster.sh kill I    # SIGKILL instance I (1..N): a crash, for failover drills
#   scripts/cluster.sh start I   # start instance I again (after kill) on its port
#   scripts/cluster.sh restart I # a rolling restart of instance I that no client notices: nginx
#                                # stops sending it requests (`down` + reload), it drains and
#                                # stops (SIGTERM), starts again, and nginx takes it back
#   scripts/cluster.sh env       # the cluster's facts as shell assignments (for scripts)
#
# Environment: SG_CLUSTER_INSTANCES (3), SG_CLUSTER_PORT (8443, nginx's TLS port; the instances
# take the next N ports and Redis the one after, unless SG_CLUSTER_EDGE_PORTS="p1 p2 ..." and
# SG_CLUSTER_REDIS_PORT say otherwise), SG_CLUSTER_DIR (default: a new mktemp -d folder),
# SG_EDGE_BIN (build/sg-edge, built as Release when missing), SG_CLUSTER_EDGE_ARGS (more sg-edge
# flags, e.g. "--workers 1"); the instances inherit the rest of the environment (SG_* settings).
# The state of a running cluster is in ${TMPDIR:-/tmp}/sg-cluster-<uid>-<port>.state (the folder,
# and each process's pid and start time, so that a pid reused by another process is never
# signalled). Installs nothing: scripts/deps.sh has nginx, redis-server and openssl.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

N=${SG_CLUSTER_INSTANCES:-3}
PORT=${SG_CLUSTER_PORT:-8443}
STATE=${TMPDIR:-/tmp}/sg-cluster-$(id -u)-$PORT.state
NGINX=${SG_NGINX_BIN:-$(command -v nginx || echo /usr/sbin/nginx)}
REDIS=${SG_REDIS_BIN:-$(command -v redis-server || echo /usr/bin/redis-server)}

die() { echo "cluster.sh: $*" >&2; exit 1; }

# The start time of a process (clock ticks since boot, field 22 of /proc/PID/stat): with the pid
# it names one process for good.
proc_start() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  # shellcheck disable=SC2086
  set -- $stat
  echo "${20}"
}

# alive PID START: the process we started is still there
alive() { [ "$(proc_start "$1" 2>/dev/null)" = "$2" ]; }

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...: poll every 0.1 s
  local secs=$1 what=$2; shift 2
  local i
  for ((i = 0; i < secs * 10; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "$what did not come up within ${secs}s"
}

load_state() {
  [ -f "$STATE" ] || die "no cluster on port $PORT (no $STATE)"
  DIR=$(sed -n 's/^dir //p' "$STATE")
  REDIS_PORT=$(sed -n 's/^redis_port //p' "$STATE")
  [ -n "$DIR" ] || die "$STATE has no folder"
}

# record NAME PID PORT: a started process into the state file
record() {
  local start
  start=$(proc_start "$2") || die "$1 (pid $2) exited at once; see $DIR/logs/$1.log"
  sed -i "/^proc $1 /d" "$STATE"
  echo "proc $1 $2 $start $3" >>"$STATE"
}

start_edge() { # start_edge I PORT
  local i=$1 p=$2
  local -a extra=()
  read -r -a extra <<<"${SG_CLUSTER_EDGE_ARGS:-}"
  port_in_use "$p" && die "port $p (instance $i) is in use"
  # Behind nginx every connection comes from one address: the per-address limits are off.
  SG_SESSION_STORE="redis://127.0.0.1:$REDIS_PORT/0" SG_MAX_CONNECTIONS_PER_IP=0 \
    SG_CONNECTION_RESERVE=0 SG_MAX_BODY_BYTES=16777216 SG_HTTP_IDLE_S=75 \
    setsid "$EDGE" --host 127.0.0.1 --port "$p" ${extra[@]+"${extra[@]}"} \
    </dev/null >>"$DIR/logs/edge$i.log" 2>&1 &
  record "edge$i" $! "$p"
}

edge_ready() { curl -fsS -o /dev/null "http://127.0.0.1:$1/ready"; }

cmd_up() {
  [ -f "$STATE" ] && die "a cluster on port $PORT is already up ($STATE); scripts/cluster.sh down first"
  [ -x "$NGINX" ] || die "no nginx (scripts/deps.sh installs it)"
  [ -x "$REDIS" ] || die "no redis-server (scripts/deps.sh installs it)"
  command -v openssl >/dev/null || die "no openssl (scripts/deps.sh installs it)"
  [[ "$N" =~ ^[1-9][0-9]*$ && "$N" -le 64 ]] || die "SG_CLUSTER_INSTANCES must be 1..64, got '$N'"
  EDGE=${SG_EDGE_BIN:-$ROOT/build/sg-edge}
  if [ ! -x "$EDGE" ]; then
    echo "cluster.sh: building sg-edge (Release)" >&2
    cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=Release -DSG_WERROR=ON >/dev/null
    cmake --build "$ROOT/build" -j"$(nproc)" --target sg-edge >/dev/null
  fi
  EDGE=$(cd "$(dirname "$EDGE")" && pwd)/$(basename "$EDGE")
  local -a ports
  if [ -n "${SG_CLUSTER_EDGE_PORTS:-}" ]; then
    read -r -a ports <<<"$SG_CLUSTER_EDGE_PORTS"
    [ "${#ports[@]}" -eq "$N" ] || die "SG_CLUSTER_EDGE_PORTS has ${#ports[@]} ports for $N instances"
  else
    for ((i = 1; i <= N; i++)); do ports+=($((PORT + i))); done
  fi
  REDIS_PORT=${SG_CLUSTER_REDIS_PORT:-$((PORT + N + 1))}
  for p in "$PORT" "$REDIS_PORT"; do port_in_use "$p" && die "port $p is in use"; done

  DIR=${SG_CLUSTER_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/sg-cluster.XXXXXX")}
  mkdir -p "$DIR"/{logs,redis,tls,nginx/conf,nginx/logs,nginx/tmp}
  DIR=$(cd "$DIR" && pwd)
  # nginx started by root runs its workers as `nobody`: they must reach the temp folders
  # (nginx creates them for that user) through this folder. The key stays 0600 (read by the master).
  chmod 0711 "$DIR" "$DIR/nginx"
  printf 'dir %s\nport %s\nredis_port %s\nedge %s\n' "$DIR" "$PORT" "$REDIS_PORT" "$EDGE" >"$STATE"
  UP_DONE=0
  trap '[ "$UP_DONE" = 1 ] || { echo "cluster.sh: up failed; stopping what started" >&2; cmd_down >/dev/null 2>&1 || true; }' EXIT

  # TLS: a self-signed certificate for 127.0.0.1 and localhost (its own CA: clients trust it with
  # --cacert DIR/tls/cert.pem, or skip verification with --insecure).
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
    -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    -keyout "$DIR/tls/key.pem" -out "$DIR/tls/cert.pem" 2>"$DIR/logs/openssl.log" ||
    die "openssl could not make a certificate; see $DIR/logs/openssl.log"
  chmod 0600 "$DIR/tls/key.pem"

  # Redis: the committed configuration, with this cluster's port, folder and files.
  setsid "$REDIS" "$ROOT/deploy/redis/redis.conf" --port "$REDIS_PORT" --bind 127.0.0.1 \
    --dir "$DIR/redis" --pidfile "$DIR/redis/redis.pid" --logfile "$DIR/logs/redis.log" \
    --daemonize no --supervised no --maxmemory 1gb </dev/null >>"$DIR/logs/redis.log" 2>&1 &
  record redis $! "$REDIS_PORT"
  wait_for 10 "redis-server on port $REDIS_PORT" redis_ping "$REDIS_PORT"

  for ((i = 1; i <= N; i++)); do start_edge "$i" "${ports[$((i - 1))]}"; done
  for ((i = 1; i <= N; i++)); do wait_for 120 "sg-edge instance $i" edge_ready "${ports[$((i - 1))]}"; done

  # nginx: the committed site (only the listen port changed) with this cluster's instances and
  # certificate; a main configuration that keeps everything under $DIR/nginx.
  sed "s/listen 8443 ssl http2;/listen 127.0.0.1:$PORT ssl http2;/" \
    "$ROOT/deploy/nginx/sg-edge.conf" >"$DIR/nginx/conf/sg-edge.conf"
  grep -q "listen 127.0.0.1:$PORT ssl http2;" "$DIR/nginx/conf/sg-edge.conf" ||
    die "deploy/nginx/sg-edge.conf has no 'listen 8443 ssl http2;' line to set the port on"
  : >"$DIR/nginx/conf/sg-edge-upstreams.conf"
  for p in "${ports[@]}"; do
    echo "server 127.0.0.1:$p max_fails=2 fail_timeout=5s;" >>"$DIR/nginx/conf/sg-edge-upstreams.conf"
  done
  printf 'ssl_certificate %s;\nssl_certificate_key %s;\n' "$DIR/tls/cert.pem" "$DIR/tls/key.pem" \
    >"$DIR/nginx/conf/sg-edge-tls.conf"
  write_nginx_main "$DIR/nginx"
  "$NGINX" -t -q -p "$DIR/nginx" -c "$DIR/nginx/conf/nginx.conf" 2>"$DIR/logs/nginx-test.log" ||
    die "nginx refused its configuration: $(cat "$DIR/logs/nginx-test.log")"
  setsid "$NGINX" -p "$DIR/nginx" -c "$DIR/nginx/conf/nginx.conf" </dev/null \
    >>"$DIR/logs/nginx.log" 2>&1 &
  record nginx $! "$PORT"
  wait_for 10 "nginx on port $PORT" curl -fsS -o /dev/null --cacert "$DIR/tls/cert.pem" \
    "https://127.0.0.1:$PORT/ready"
  UP_DONE=1
  echo "cluster up: https://127.0.0.1:$PORT ($N instances on ports ${ports[*]}, redis on $REDIS_PORT)"
  echo "  CA file:  $DIR/tls/cert.pem    (sg stream --server https://127.0.0.1:$PORT --cacert ...)"
  echo "  logs:     $DIR/logs/ and $DIR/nginx/logs/access.log"
  echo "  stop:     SG_CLUSTER_PORT=$PORT scripts/cluster.sh down"
}

redis_ping() {
  if command -v redis-cli >/dev/null; then
    [ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = PONG ]
  else
    port_in_use "$1"
  fi
}

# The main nginx configuration of a cluster: everything (pid, logs, temp files) under the prefix,
# in the foreground (`daemon off`) so the pid we record is the master's. No `user`: a non-root
# master cannot switch users (ports above 1024 need no root either).
write_nginx_main() {
  local prefix=$1
  cat >"$prefix/conf/nginx.conf" <<EOF
# Written by scripts/cluster.sh for one cluster; the site is sg-edge.conf (deploy/nginx/).
daemon off;
master_process on;
worker_processes auto;
pid $prefix/nginx.pid;
error_log $prefix/logs/error.log warn;
events {
    worker_connections 4096;
}
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    client_body_temp_path $prefix/tmp/body;
    proxy_temp_path $prefix/tmp/proxy;
    fastcgi_temp_path $prefix/tmp/fastcgi;
    uwsgi_temp_path $prefix/tmp/uwsgi;
    scgi_temp_path $prefix/tmp/scgi;
    server_tokens off;
    include sg-edge.conf;
    access_log $prefix/logs/access.log sg_edge;   # the format is defined in sg-edge.conf
}
EOF
}

# stop NAME SIGNAL SECONDS: signal the recorded process, wait for it to go, SIGKILL after SECONDS
stop_proc() {
  local name=$1 sig=$2 secs=$3 line pid start
  line=$(grep "^proc $name " "$STATE" || true)
  [ -n "$line" ] || return 0
  read -r _ _ pid start _ <<<"$line"
  if alive "$pid" "$start"; then
    kill "-$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < secs * 10; i++)); do alive "$pid" "$start" || break; sleep 0.1; done
    if alive "$pid" "$start"; then
      echo "cluster.sh: $name (pid $pid) still running after ${secs}s: SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do alive "$pid" "$start" || break; sleep 0.1; done
    fi
  fi
}

cmd_down() {
  load_state
  # nginx first (no new requests reach the instances), then the instances (each drains what it
  # has, at most its 30 s grace), then Redis (it flushes the AOF on SIGTERM).
  stop_proc nginx TERM 10
  local names
  names=$(awk '$1 == "proc" && $2 ~ /^edge/ {print $2}' "$STATE")
  for n in $names; do
    local line pid start
    line=$(grep "^proc $n " "$STATE")
    read -r _ _ pid start _ <<<"$line"
    alive "$pid" "$start" && kill -TERM "$pid" 2>/dev/null || true
  done
  for n in $names; do stop_proc "$n" TERM 35; done
  stop_proc redis TERM 10
  rm -f "$STATE"
  echo "cluster on port $PORT stopped (files kept in $DIR)"
}

cmd_status() {
  load_state
  echo "cluster https://127.0.0.1:$PORT, folder $DIR"
  local rc=0
  while read -r _ name pid start port; do
    if alive "$pid" "$start"; then
      printf '  %-7s pid %-8s port %-6s running\n' "$name" "$pid" "$port"
    else
      printf '  %-7s pid %-8s port %-6s NOT RUNNING\n' "$name" "$pid" "$port"; rc=1
    fi
  done < <(grep '^proc ' "$STATE")
  return $rc
}

instance_arg() {
  [[ "${1:-}" =~ ^[1-9][0-9]*$ ]] || die "which instance? (1..N)"
  grep -q "^proc edge$1 " "$STATE" || die "no instance $1"
}

cmd_kill() {
  load_state
  instance_arg "${1:-}"
  local pid start
  read -r _ _ pid start _ <<<"$(grep "^proc edge$1 " "$STATE")"
  alive "$pid" "$start" || die "instance $1 is not running"
  local t0=${EPOCHREALTIME/,/.}
  kill -KILL "$pid"
  local t1=${EPOCHREALTIME/,/.}
  for ((i = 0; i < 50; i++)); do alive "$pid" "$start" || break; sleep 0.1; done
  # the moment, to the microsecond, for tests that compare it with nginx's log
  echo "instance $1 (pid $pid) killed between $t0 and $t1"
}

cmd_start() {
  load_state
  instance_arg "${1:-}"
  local pid start port
  read -r _ _ pid start port <<<"$(grep "^proc edge$1 " "$STATE")"
  alive "$pid" "$start" && die "instance $1 is running (pid $pid)"
  EDGE=$(sed -n 's/^edge //p' "$STATE")
  start_edge "$1" "$port"
  wait_for 120 "sg-edge instance $1" edge_ready "$port"
  echo "instance $1 started on port $port"
}

# nginx_children: the pids of the nginx master's children (its workers)
nginx_children() {
  local pid start
  read -r _ _ pid start _ <<<"$(grep "^proc nginx " "$STATE")"
  alive "$pid" "$start" || die "nginx is not running"
  local f line rest
  for f in /proc/[0-9]*/stat; do
    { read -r line <"$f"; } 2>/dev/null || continue # processes come and go meanwhile
    rest=${line##*) }
    # shellcheck disable=SC2086
    set -- $rest
    [ "$2" = "$pid" ] && { f=${f#/proc/}; echo "${f%/stat}"; }
  done
  return 0
}

# nginx_reload: re-read the configuration (SIGHUP to the master) and wait until new workers run it.
# The old workers finish the requests they hold and close their idle connections (HTTP/2 ones with
# GOAWAY), so from then on no new request is sent by the old configuration.
nginx_reload() {
  local pid before now i
  read -r _ _ pid _ _ <<<"$(grep "^proc nginx " "$STATE")"
  before=$(nginx_children | sort)
  "$NGINX" -t -q -p "$DIR/nginx" -c "$DIR/nginx/conf/nginx.conf" 2>"$DIR/logs/nginx-test.log" ||
    die "nginx refused its configuration: $(cat "$DIR/logs/nginx-test.log")"
  kill -HUP "$pid"
  for ((i = 0; i < 100; i++)); do
    now=$(nginx_children | sort)
    [ -n "$(comm -13 <(echo "$before") <(echo "$now"))" ] && break
    sleep 0.1
  done
  sleep 0.3 # the old workers' idle connections close
}

# upstream_down PORT yes|no: mark an instance `down` in nginx's upstream list, or not
upstream_down() {
  local f="$DIR/nginx/conf/sg-edge-upstreams.conf"
  if [ "$2" = yes ]; then
    sed -i "s/^server 127.0.0.1:$1 \(.*\);$/server 127.0.0.1:$1 \1 down;/; s/ down down;$/ down;/" "$f"
  else
    sed -i "s/^server 127.0.0.1:$1 \(.*\) down;$/server 127.0.0.1:$1 \1;/" "$f"
  fi
}

cmd_restart() {
  load_state
  instance_arg "${1:-}"
  local port
  read -r _ _ _ _ port <<<"$(grep "^proc edge$1 " "$STATE")"
  EDGE=$(sed -n 's/^edge //p' "$STATE")
  upstream_down "$port" yes
  nginx_reload
  stop_proc "edge$1" TERM 35 # sg-edge answers what it has in flight, then exits
  start_edge "$1" "$port"
  wait_for 120 "sg-edge instance $1" edge_ready "$port"
  upstream_down "$port" no
  nginx_reload
  echo "instance $1 restarted on port $port"
}

cmd_env() {
  load_state
  echo "SG_CLUSTER_DIR=$DIR"
  echo "SG_CLUSTER_URL=https://127.0.0.1:$PORT"
  echo "SG_CLUSTER_CA=$DIR/tls/cert.pem"
  echo "SG_CLUSTER_REDIS_PORT=$REDIS_PORT"
  echo "SG_CLUSTER_ACCESS_LOG=$DIR/nginx/logs/access.log"
  echo "SG_CLUSTER_EDGE_PORTS=\"$(awk '$1 == "proc" && $2 ~ /^edge/ {printf "%s%s", s, $5; s=" "}' "$STATE")\""
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  kill) cmd_kill "${2:-}" ;;
  start) cmd_start "${2:-}" ;;
  restart) cmd_restart "${2:-}" ;;
  env) cmd_env ;;
  *) echo "usage: scripts/cluster.sh up|down|status|kill I|start I|restart I|env" >&2; exit 2 ;;
esac
