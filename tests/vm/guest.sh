#!/usr/bin/env bash
# The test VM's surroundings, run inside the guest by tests/vm (as root, through the agent). Not part of keliu:
# the router's side is what provision.sh sets up; this is the world around it.
#
#   guest.sh internet          the "internet": a network namespace on the router's WAN link (wan0 <-> inet0)
#                              with DNS answering every name with itself, HTTP (the OS probes' expected answers,
#                              anything else echoed as "internet <host><path>") and HTTPS (self-signed) on it
#   guest.sh phone-up PHY [MAC]  a phone: PHY moved into the namespace "phone", wpa_supplicant with pre-association
#                              MAC randomization joins the open guest SSID, busybox udhcpc leases an address; with
#                              MAC it joins with that address (a phone's persistent per-network random address,
#                              as Android 10+ and iOS 14+ keep it) instead of a new random one
#   guest.sh phone-down        the phone leaves (wpa_supplicant stops, the lease is dropped)
#   guest.sh phone CMD...      run CMD in the phone's namespace
set -euo pipefail

INET_NS=internet
PHONE_NS=phone
RUN=/run/keliu-vm
BIN=/usr/local/lib/keliu-vm  # /run is noexec
mkdir -p "$RUN" "$BIN"

internet() {
  ip netns add "$INET_NS" 2>/dev/null || true
  if ! ip link show wan0 >/dev/null 2>&1; then
    ip link add wan0 type veth peer name inet0 netns "$INET_NS"
  fi
  ip addr replace 198.51.100.2/24 dev wan0
  ip link set wan0 up
  ip route replace default via 198.51.100.1 dev wan0
  ip -n "$INET_NS" addr replace 198.51.100.1/24 dev inet0
  ip -n "$INET_NS" link set inet0 up
  ip -n "$INET_NS" link set lo up
  # no route back to the shop's LAN (10.77.0.0/22), as on the real internet: keliu's table masquerades the LAN on
  # router.wan_iface, so every answer comes back to the router's WAN address
  # a P-256 key: generated at once, where RSA's prime search is slow under TCG (this step ran over 60 s at load 10)
  if [ ! -f "$RUN/inet.crt" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=www.example.com \
      -keyout "$RUN/inet.key" -out "$RUN/inet.crt" 2>/dev/null
  fi
  cat >"$RUN/inet.py" <<'EOF'
import http.server, socketserver, ssl, sys, threading
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        host = (self.headers.get("Host") or "").split(":")[0]
        if self.path == "/whoami":
            body = f"{self.client_address[0]}\n".encode()
            self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
            self.wfile.write(body); return
        if self.path == "/generate_204":
            self.send_response(204); self.end_headers(); return
        body = ("<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>"
                if self.path == "/hotspot-detect.html" else f"internet {host}{self.path}\n").encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
plain = S(("0.0.0.0", 80), H)
tls = S(("0.0.0.0", 443), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(sys.argv[1], sys.argv[2])
tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
threading.Thread(target=tls.serve_forever, daemon=True).start()
plain.serve_forever()
EOF
  if ! ip netns pids "$INET_NS" | grep -q .; then
    ip netns exec "$INET_NS" setsid dnsmasq --no-resolv --no-hosts --address=/#/198.51.100.1 --listen-address=198.51.100.1 \
      --bind-interfaces --pid-file="$RUN/inet-dnsmasq.pid" --log-facility="$RUN/inet-dnsmasq.log"
    ip netns exec "$INET_NS" setsid python3 "$RUN/inet.py" "$RUN/inet.crt" "$RUN/inet.key" \
      >"$RUN/inet-http.log" 2>&1 </dev/null &
  fi
  # python3's start under TCG takes seconds, more on a loaded host: poll, with a hard limit
  for _ in $(seq 600); do
    ip netns exec "$INET_NS" ss -ltn | grep -q ':443 ' && return 0
    sleep 0.2
  done
  echo "internet: the web server did not start" >&2; cat "$RUN/inet-http.log" >&2; return 1
}

phone_up() {
  local phy="$1" mac="${2:-}" ifc mac_mode=1
  phone_down
  ip netns add "$PHONE_NS" 2>/dev/null || true
  if iw phy "$phy" info >/dev/null 2>&1; then iw phy "$phy" set netns name "$PHONE_NS"; fi
  ifc="$(ip netns exec "$PHONE_NS" iw dev | awk '/Interface/{print $2; exit}')"
  [ -n "$ifc" ] || { echo "phone: no wireless interface in the namespace" >&2; return 1; }
  echo "$ifc" >"$RUN/phone.ifc"
  ip -n "$PHONE_NS" link set lo up
  # the permanent address, to compare with what the air sees
  [ -f "$RUN/phone.permaddr" ] || ip netns exec "$PHONE_NS" cat "/sys/class/net/$ifc/address" >"$RUN/phone.permaddr"
  # mac_addr=1: a random address per network; preassoc_mac_addr=1: random addresses while scanning;
  # ssid: 免费WiFi in hex (UTF-8); scan_ssid=1 sends directed probe requests, as a phone that knows the network does
  if [ -n "$mac" ]; then
    mac_mode=0
    ip -n "$PHONE_NS" link set "$ifc" down
    ip -n "$PHONE_NS" link set "$ifc" address "$mac"
  fi
  cat >"$RUN/phone-wpa.conf" <<EOF
ctrl_interface=$RUN/phone-wpa
mac_addr=$mac_mode
preassoc_mac_addr=1
rand_addr_lifetime=60
network={
	ssid=e5858de8b4b957694669
	key_mgmt=NONE
	scan_ssid=1
}
EOF
  ip netns exec "$PHONE_NS" wpa_supplicant -B -i "$ifc" -c "$RUN/phone-wpa.conf" -f "$RUN/phone-wpa.log" \
    -P "$RUN/phone-wpa.pid" -dd
  # scan and association under TCG: seconds on an idle host, more on a loaded one (polled, with a hard limit)
  for _ in $(seq 450); do
    if ip netns exec "$PHONE_NS" wpa_cli -p "$RUN/phone-wpa" -i "$ifc" status 2>/dev/null | grep -q '^wpa_state=COMPLETED'; then
      break
    fi
    sleep 0.2
  done
  ip netns exec "$PHONE_NS" wpa_cli -p "$RUN/phone-wpa" -i "$ifc" status
  cat >"$BIN/udhcpc.sh" <<EOF
#!/bin/sh
case "\$1" in
  bound|renew)
    ip addr flush dev "\$interface"
    ip addr add "\$ip/\$mask" dev "\$interface"
    ip route replace default via "\$router" dev "\$interface"
    mkdir -p /etc/netns/$PHONE_NS
    echo "nameserver \$dns" >/etc/netns/$PHONE_NS/resolv.conf
    env | grep -E '^(ip|mask|router|dns|opt114|captive)=' | sort >$RUN/phone.lease ;;
esac
EOF
  chmod +x "$BIN/udhcpc.sh"
  ip netns exec "$PHONE_NS" busybox udhcpc -i "$ifc" -n -q -t 10 -T 2 -O 114 -s "$BIN/udhcpc.sh"
  cat "$RUN/phone.lease"
}

phone_down() {
  local pid ifc
  if [ -f "$RUN/phone-wpa.pid" ]; then
    pid="$(cat "$RUN/phone-wpa.pid")"
    kill "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$RUN/phone-wpa.pid" "$RUN/phone.lease"
  ifc="$(cat "$RUN/phone.ifc" 2>/dev/null || true)"
  [ -z "$ifc" ] || ip -n "$PHONE_NS" addr flush dev "$ifc" 2>/dev/null || true
}

case "${1:-}" in
  internet) internet ;;
  phone-up) phone_up "${2:?phone-up PHY [MAC]}" "${3:-}" ;;
  phone-down) phone_down ;;
  phone) shift; exec ip netns exec "$PHONE_NS" "$@" ;;
  *) echo "usage: guest.sh internet | phone-up PHY | phone-down | phone CMD..." >&2; exit 2 ;;
esac
