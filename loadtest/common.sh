# shellcheck shell=bash
# Shared by loadtest/stress.sh and loadtest/smoke.sh (sourced): start a fresh sg-edge on a free
# loopback port and stop it again. Expects $SG_EDGE (the binary) and sets $SG_PORT_USED / $SG_PID.
PY=/usr/bin/python3   # Debian's python: python3-locust, python3-pil, python3-matplotlib live there

sg_free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# sg_start LOGFILE [extra sg-edge args...]
sg_start() {
  local log=$1; shift
  SG_PORT_USED=$(sg_free_port)
  "$SG_EDGE" --host 127.0.0.1 --port "$SG_PORT_USED" --log-level warn "$@" >"$log" 2>&1 &
  SG_PID=$!
  # GET /ready is 200 once the models (if any) are loaded, 503 before
  for _ in $(seq 1 1200); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$SG_PORT_USED/ready" 2>/dev/null; then return 0; fi
    if ! kill -0 "$SG_PID" 2>/dev/null; then
      echo "sg-edge exited at start; its log:" >&2; cat "$log" >&2; return 1
    fi
    sleep 0.05
  done
  echo "sg-edge was not ready (GET /ready) within 60 s" >&2
  return 1
}

sg_stop() {
  if [ -n "${SG_PID:-}" ]; then
    kill "$SG_PID" 2>/dev/null || true
    wait "$SG_PID" 2>/dev/null || true
    SG_PID=
  fi
}
