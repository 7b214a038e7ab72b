#!/usr/bin/env bash
# Network-conditions test: the glasses simulator (`sg stream`) talks to sg-edge over an emulated
# radio link, once per profile, and must lose no audio, drop a bounded share of frames and get every
# question answered; records E2E turn latency p50/p95 per profile. Profiles: Wi-Fi (20 ms RTT,
# 50 Mbit/s), 4G (60 ms, 1 % loss, 10 Mbit/s), poor 3G (200 ms, 3 % loss, 1 Mbit/s), and "outage":
# 4G with a 12 s blackout (every packet lost) from the 5th second, longer than sg stream's 10 s
# per-attempt timeout, so the client's retries must carry the audio across it.
#
# Topology (all private, nothing leaves the namespaces; there is no default route anywhere):
#   sg-cli-PID  10.77.1.2/30 --veth-- 10.77.1.1 [sg-link-PID] 10.77.2.1 --veth-- 10.77.2.2/30  sg-srv-PID
# The link namespace forwards between the two veth pairs and shapes both directions the same way
# (one-way delay = RTT/2, rate, loss): with `tc qdisc … netem` on its two veths where the kernel has
# sch_netem, else (this project's machines: CONFIG_NET_SCH_NETEM is off) by routing every packet
# through a TUN device served by tests/netem/linkemu.c, a userspace netem with the same model.
#
#   tests/netem/run.sh [BUILD_DIR]           # default build; needs BUILD_DIR/sg-edge and sg stream
# Environment: SG_NETEM_SECONDS (simulated seconds of glasses per profile, default 20),
# SG_NETEM_SPEED (sg stream --speed, default 1), SG_NETEM_PROFILES ("wifi 4g 3g outage"), SG_NETEM_SHAPER
# (netem|linkemu, default: netem when the kernel has it), SG_NETEM_OUT (write the results as JSON
# there), SG_NETEM_KEEP (keep the per-profile logs in that directory), SG_NETEM_SG (the sg binary,
# default BUILD_DIR/sg), SG_NETEM_QUESTION_EVERY (simulated seconds between questions, default 2).
# Exit: 0 passed, 1 failed, 77 skipped (not root / no namespaces / no shaper / no sg stream).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
secs=${SG_NETEM_SECONDS:-20}
speed=${SG_NETEM_SPEED:-1}
profiles=${SG_NETEM_PROFILES:-wifi 4g 3g outage}
qevery=${SG_NETEM_QUESTION_EVERY:-2}
PY=/usr/bin/python3

skip() { echo "SKIP: network-conditions test: $*"; exit 77; }

# name: RTT ms, rate kbit/s, loss % (per packet, each direction), blackout start s, blackout length s
profile_params() {
  case $1 in
    wifi) echo "20 50000 0 0 0" ;;
    4g) echo "60 10000 1 0 0" ;;
    3g) echo "200 1000 3 0 0" ;;
    outage) echo "60 10000 1 5 12" ;;
    *) echo "tests/netem/run.sh: unknown profile '$1' (wifi, 4g, 3g, outage)" >&2; return 1 ;;
  esac
}
for p in $profiles; do profile_params "$p" >/dev/null; done

[ "$(id -u)" -eq 0 ] || skip "needs root (CAP_NET_ADMIN) to create network namespaces"
command -v ip >/dev/null && command -v tc >/dev/null || skip "needs ip and tc (Debian iproute2)"
sg=${SG_NETEM_SG:-$build/sg}
[ -x "$build/sg-edge" ] && [ -x "$sg" ] || { echo "tests/netem/run.sh: no $build/sg-edge or $sg" >&2; exit 1; }
"$sg" stream --help >/dev/null 2>&1 || skip "$sg has no 'stream' command"
"$PY" -c 'import json' 2>/dev/null || skip "needs $PY"

srv=sg-srv-$$ cli=sg-cli-$$ lnk=sg-link-$$
vc=sgc$$ vlc=sglc$$ vs=sgs$$ vls=sgls$$ tun=sgt$$ # interface names stay under 16 bytes
SRV_IP=10.77.2.2
work=$(mktemp -d)
server_pid='' emu_pid='' blackout_pid='' stream_pid=''

cleanup() {
  set +e # a killed child's wait status must not stop the cleanup half-way
  [ -n "$stream_pid" ] && kill "$stream_pid" 2>/dev/null && wait "$stream_pid" 2>/dev/null
  [ -n "$blackout_pid" ] && kill "$blackout_pid" 2>/dev/null && wait "$blackout_pid" 2>/dev/null
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null && wait "$emu_pid" 2>/dev/null
  for ns in "$cli" "$srv" "$lnk"; do ip netns del "$ns" 2>/dev/null; done
  if [ -n "${SG_NETEM_KEEP:-}" ]; then mkdir -p "$SG_NETEM_KEEP" && cp -r "$work"/. "$SG_NETEM_KEEP"/; fi
  rm -rf "$work"
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$srv" 2>/dev/null || skip "cannot create network namespaces (ip netns add failed)"
ip netns add "$cli" && ip netns add "$lnk" || skip "cannot create network namespaces"
ip link add "$vc" netns "$cli" type veth peer name "$vlc" netns "$lnk" 2>/dev/null &&
  ip link add "$vs" netns "$srv" type veth peer name "$vls" netns "$lnk" 2>/dev/null ||
  skip "cannot create veth pairs"
ip -n "$cli" addr add 10.77.1.2/30 dev "$vc"
ip -n "$lnk" addr add 10.77.1.1/30 dev "$vlc"
ip -n "$lnk" addr add 10.77.2.1/30 dev "$vls"
ip -n "$srv" addr add "$SRV_IP"/30 dev "$vs"
for ns in "$cli" "$srv" "$lnk"; do ip -n "$ns" link set lo up; done
ip -n "$cli" link set "$vc" up
ip -n "$srv" link set "$vs" up
ip -n "$lnk" link set "$vlc" up
ip -n "$lnk" link set "$vls" up
ip -n "$cli" route add 10.77.2.0/30 via 10.77.1.1
ip -n "$srv" route add 10.77.1.0/30 via 10.77.2.1
ip netns exec "$lnk" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
  net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.all.send_redirects=0

shaper=${SG_NETEM_SHAPER:-}
if [ -z "$shaper" ]; then
  if tc -n "$lnk" qdisc add dev "$vlc" root netem delay 1ms 2>/dev/null; then
    tc -n "$lnk" qdisc del dev "$vlc" root; shaper=netem
  else shaper=linkemu; fi
fi
case $shaper in
  netem) ;;
  linkemu)
    [ -x "$build/tests/sg_linkemu" ] || skip "the kernel has no sch_netem and $build/tests/sg_linkemu is not built"
    [ -c /dev/net/tun ] || skip "the kernel has no sch_netem and there is no /dev/net/tun"
    ip -n "$lnk" tuntap add dev "$tun" mode tun 2>/dev/null || skip "cannot create a TUN device"
    ip -n "$lnk" link set "$tun" up mtu 1500
    ip netns exec "$lnk" sysctl -qw "net.ipv4.conf.$tun.rp_filter=0"
    # everything that arrives from either veth goes to the TUN device; what the emulator writes
    # back arrives from the TUN device and is forwarded by the main table
    ip -n "$lnk" route add default dev "$tun" table 100
    ip -n "$lnk" rule add iif "$vlc" lookup 100
    ip -n "$lnk" rule add iif "$vls" lookup 100
    ;;
  *) echo "tests/netem/run.sh: SG_NETEM_SHAPER must be netem or linkemu" >&2; exit 1 ;;
esac

tcp_retrans() { ip netns exec "$1" awk '/^Tcp:/ && $13 ~ /^[0-9]+$/ {print $13}' /proc/net/snmp; }
http_cli() { ip netns exec "$cli" curl -sS --max-time 20 "$@"; }

netem_set() { # one-way delay ms, rate kbit/s, loss %
  local dev
  for dev in "$vlc" "$vls"; do
    tc -n "$lnk" qdisc replace dev "$dev" root netem delay "${1}ms" loss "${3}%" rate "${2}kbit" \
      limit 1000 || { echo "tests/netem/run.sh: tc netem failed" >&2; return 1; }
  done
}

shape() { # applies the profile being run
  # uses $half (one-way delay), $rate and $loss of the profile
  if [ "$shaper" = netem ]; then
    netem_set "$half" "$rate" "$loss"
  else
    ip netns exec "$lnk" "$build/tests/sg_linkemu" "$tun" "$SRV_IP" "$half" "$rate" "$loss" "$$" \
      >"$work/$name.link.json" 2>"$work/$name.link.log" &
    emu_pid=$!
  fi
}

blackout() { # on|off, for the profile being shaped
  if [ "$shaper" = netem ]; then
    if [ "$1" = on ]; then netem_set "$half" "$rate" 100; else netem_set "$half" "$rate" "$loss"; fi
  else
    kill -USR1 "$emu_pid"
  fi
}

unshape() {
  if [ "$shaper" = netem ]; then
    for dev in "$vlc" "$vls"; do tc -n "$lnk" qdisc del dev "$dev" root 2>/dev/null || true; done
    tc -n "$lnk" -s qdisc show >"$work/$name.link.txt" 2>&1 || true
  elif [ -n "$emu_pid" ]; then
    kill "$emu_pid" 2>/dev/null || true; wait "$emu_pid" 2>/dev/null || true; emu_pid=
  fi
}

echo "network conditions: shaper $shaper, ${secs}s of glasses per profile at --speed $speed"
results=()
for name in $profiles; do
  read -r rtt rate loss bo_start bo_len < <(profile_params "$name")
  half=$(awk -v r="$rtt" 'BEGIN{printf "%g", r/2}')
  shape
  ip netns exec "$srv" "$build/sg-edge" --host "$SRV_IP" --port 5000 --log-level warn \
    >"$work/$name.server.log" 2>&1 &
  server_pid=$!
  up=0
  for _ in $(seq 1 100); do
    if http_cli -fo /dev/null "http://$SRV_IP:5000/ready" 2>/dev/null; then up=1; break; fi
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  [ $up = 1 ] || { echo "FAIL: sg-edge did not come up behind the $name link"; cat "$work/$name.server.log"; exit 1; }
  # TCP connect time = one round trip: the best of 5 shows the shaping is really there
  for _ in 1 2 3 4 5; do
    http_cli -o /dev/null -w '%{time_connect}\n' "http://$SRV_IP:5000/health" || true
  done >"$work/$name.connect.txt"
  r0_cli=$(tcp_retrans "$cli") r0_srv=$(tcp_retrans "$srv")
  if [ "$bo_len" -gt 0 ]; then
    (sleep "$bo_start"; blackout on; sleep "$bo_len"; blackout off) &
    blackout_pid=$!
  fi
  rc=0
  timeout $((secs * 4 + 120)) ip netns exec "$cli" "$sg" stream --server "http://$SRV_IP:5000" \
    --frames ../shared/data/images --audio ../shared/data/audio/jfk.wav --duration "$secs" \
    --speed "$speed" --question-every "$qevery" --seed 1 --json >"$work/$name.stream.json" 2>"$work/$name.stream.log" &
  stream_pid=$! # waited for in the background so that a signal reaches the trap at once
  wait "$stream_pid" || rc=$?
  stream_pid=''
  if [ -n "$blackout_pid" ]; then wait "$blackout_pid" || true; blackout_pid=; fi
  r1_cli=$(tcp_retrans "$cli") r1_srv=$(tcp_retrans "$srv")
  http_cli "http://$SRV_IP:5000/metrics" >"$work/$name.metrics.json" 2>/dev/null || echo '{}' >"$work/$name.metrics.json"
  http_cli "http://$SRV_IP:5000/metrics/prometheus" >"$work/$name.prom.txt" 2>/dev/null || : >"$work/$name.prom.txt"
  alive=1; kill -0 "$server_pid" 2>/dev/null || alive=0
  kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; server_pid=
  unshape
  cat >"$work/$name.meta.json" <<EOF
{"profile":"$name","rtt_ms":$rtt,"rate_kbit":$rate,"loss_pct":$loss,"shaper":"$shaper",
 "blackout_start_s":$bo_start,"blackout_s":$bo_len,
 "seconds":$secs,"speed":$speed,"stream_rc":$rc,"server_alive":$alive,
 "tcp_retrans_client":$((r1_cli - r0_cli)),"tcp_retrans_server":$((r1_srv - r0_srv))}
EOF
  results+=("$name")
done

"$PY" tests/netem/check.py "$work" "${SG_NETEM_OUT:-}" "${results[@]}"
