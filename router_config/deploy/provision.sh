#!/usr/bin/env bash
# Provision a Debian 12 machine as a keliu router appliance. The one provisioning script: the Vagrantfile runs it in
# a VM, docs/DEPLOY.md tells a real deployment to run it on the router. Idempotent: running it again upgrades keliu
# from the source tree, re-renders the router config from /etc/keliu/keliu.toml and restarts the services; it never
# overwrites an existing keliu.toml or keliu.env and never touches the secrets in /var/lib/keliu/keys.
#
# usage: provision.sh [--role router|central] [--src DIR] [--wheels DIR] [--wan IFACE] [--lan-ports IF[,IF...]]
#                     [--analytics embedded|celery|none] [--with-redis] [--sensor-phy PHY] [--no-sensor] [--hwsim]
#                     [--no-start]
#
#   --role ROLE        router (default): the shop's router — LAN bridge, nftables, dnsmasq, hostapd, portal, sensor,
#                      the AP's station list (keliu-stations, where hostapd runs) and analytics as --analytics says;
#                      central: only the analytics of a fleet (Celery worker and beat on analytics.broker_url,
#                      PostgreSQL in database_url), no router parts
#   --src DIR          the keliu source tree to install (default: the tree this script is in)
#   --wheels DIR       install offline from a wheelhouse made by `pip wheel -w DIR <source tree>` (no PyPI needed)
#   --wan IFACE        WAN interface, written into a new keliu.toml (router.wan_iface)
#   --lan-ports LIST   wired ports bridged into the LAN bridge (router.lan_iface, "br-lan"); the AP joins it too
#   --analytics MODE   embedded (default): `keliu analytics run` on this router, SQLite, no broker;
#                      celery: `keliu analytics worker` + `beat` on the broker named by analytics.broker_url;
#                      none: analytics runs centrally (docs/DEPLOY.md), nothing here
#   --with-redis       install and enable Debian's redis-server on 127.0.0.1 (a local broker for --analytics celery)
#   --sensor-phy N     enable the sensor on radio phyN (monitor mode; router.monitor_phy, written into a new
#                      keliu.toml); without it (or --hwsim) the sensor is not enabled
#   --no-sensor        disable the sensor again
#   --staff-ports LIST wired ports of the shop's own network, bridged into router.staff_bridge with the staff SSID
#   --hwsim            load mac80211_hwsim with 3 radios (VMs and tests: phy0 = AP, phy1 = sensor, phy2 = a
#                      simulated phone for trying the guest SSID, see tests/vm)
#   --no-start         install and enable everything but start nothing (image builds)
set -euo pipefail

PREFIX=/opt/keliu
ETC=/etc/keliu
VAR=/var/lib/keliu
DEPLOY="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRC="$(cd "$DEPLOY/../.." && pwd)"
WHEELS=""
WAN=""
LAN_PORTS=""
STAFF_PORTS=""
ROLE=router
ANALYTICS=""
WITH_REDIS=0
SENSOR_PHY=""
NO_SENSOR=0
HWSIM=0
START=1

say() { printf 'provision: %s\n' "$*"; }
die() { printf 'provision: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --role) ROLE="$2"; shift 2 ;;
    --src) SRC="$2"; shift 2 ;;
    --wheels) WHEELS="$2"; shift 2 ;;
    --wan) WAN="$2"; shift 2 ;;
    --lan-ports) LAN_PORTS="$2"; shift 2 ;;
    --staff-ports) STAFF_PORTS="$2"; shift 2 ;;
    --analytics) ANALYTICS="$2"; shift 2 ;;
    --with-redis) WITH_REDIS=1; shift ;;
    --sensor-phy) SENSOR_PHY="${2#phy}"; shift 2 ;;
    --no-sensor) NO_SENSOR=1; shift ;;
    --hwsim) HWSIM=1; shift ;;
    --no-start) START=0; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option: $1 (see --help)" ;;
  esac
done

case "$ROLE" in router|central) ;; *) die "--role: one of router, central: $ROLE" ;; esac
if [ -z "$ANALYTICS" ]; then
  if [ "$ROLE" = central ]; then ANALYTICS=celery; else ANALYTICS=embedded; fi
fi
[ "$ROLE" = router ] || [ "$ANALYTICS" = celery ] || die "--role central runs --analytics celery only"
[ "$HWSIM" = 0 ] || [ -n "$SENSOR_PHY" ] || SENSOR_PHY=1
case "$SENSOR_PHY" in *[!0-9]*) die "--sensor-phy: a radio index such as 1 or phy1: $SENSOR_PHY" ;; esac
case "$ANALYTICS" in embedded|celery|none) ;; *) die "--analytics: one of embedded, celery, none: $ANALYTICS" ;; esac
[ "$(id -u)" = 0 ] || die "run as root"
[ -f "$SRC/pyproject.toml" ] || die "--src: no keliu source tree at $SRC"
# When Vagrant runs this script it is a copy in /tmp: the unit files and the template come from the source tree.
DEPLOY="$SRC/router_config/deploy"
[ -f /etc/debian_version ] || die "this script provisions Debian (12 bookworm); see docs/DEPLOY.md for others"

# --- Debian packages ------------------------------------------------------------------------------------------
# redis-server only on request: the embedded default needs no broker (SQLite, tasks in-process).
packages=(python3 python3-venv)
# tzdata: keliu.toml's time zones (zoneinfo has no other source); libpcap0.8: the sensor's kernel filter (scapy
# compiles "type mgt subtype probe-req" with it)
packages+=(tzdata)
[ "$ROLE" = router ] && packages+=(nftables dnsmasq hostapd iw iproute2 conntrack wireless-regdb kmod libpcap0.8)
[ "$WITH_REDIS" = 1 ] && packages+=(redis-server)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- the keliu user and its directories -----------------------------------------------------------------------
if ! id -u keliu >/dev/null 2>&1; then
  say "creating system user keliu"
  useradd --system --user-group --home-dir "$VAR" --no-create-home --shell /usr/sbin/nologin keliu
fi
install -d -m 0750 -o root -g keliu "$ETC"
# The var_dir: SQLite database, spool and the first-run secrets (keys/, mode 0700/0600, generated by keliu itself).
install -d -m 0750 -o keliu -g keliu "$VAR"

# --- keliu in a virtualenv ------------------------------------------------------------------------------------
[ -x "$PREFIX/bin/python" ] || python3 -m venv "$PREFIX"
if [ -n "$WHEELS" ]; then
  # a wheelhouse made elsewhere with `pip wheel -w DIR <source tree>`: keliu's own wheel and all its dependencies
  "$PREFIX/bin/pip" install -q --no-index --find-links "$WHEELS" --upgrade keliu
else
  "$PREFIX/bin/pip" install -q --upgrade pip
  "$PREFIX/bin/pip" install -q --upgrade "$SRC"
fi
KELIU="$PREFIX/bin/keliu"
install -D -m 0644 "$SRC/docs/DEPLOY.md" "$PREFIX/share/doc/keliu/DEPLOY.md"

# as_keliu CMD...: run as the keliu user with what the services see: keliu.toml and the KEY=value lines of
# keliu.env (systemd's EnvironmentFile; write values without quotes).
as_keliu() {
  local -a envs=("KELIU_CONFIG=$ETC/keliu.toml")
  local line
  if [ -f "$ETC/keliu.env" ]; then
    while IFS= read -r line || [ -n "$line" ]; do
      case "$line" in '' | '#'* | ';'*) continue ;; esac
      envs+=("$line")
    done <"$ETC/keliu.env"
  fi
  (cd "$VAR" && runuser -u keliu -- env "${envs[@]}" "$@")
}

# --- configuration --------------------------------------------------------------------------------------------
if [ ! -f "$ETC/keliu.toml" ]; then
  say "writing $ETC/keliu.toml from the template (edit it, then run this script again)"
  install -m 0640 -o root -g keliu "$DEPLOY/keliu.toml.in" "$ETC/keliu.toml"
  if [ -n "$WAN" ]; then
    sed -i "s/^wan_iface = .*/wan_iface = \"$WAN\"/" "$ETC/keliu.toml"
  fi
  if [ -n "$SENSOR_PHY" ]; then
    sed -i "s/^monitor_phy = .*/monitor_phy = $SENSOR_PHY/" "$ETC/keliu.toml"
  fi
fi
if [ ! -f "$ETC/keliu.env" ]; then
  # Secrets of outside services (SMS gateway, database password) go here, never into the repository.
  install -m 0640 -o root -g keliu /dev/null "$ETC/keliu.env"
  cat >"$ETC/keliu.env" <<'EOF'
# Environment of every keliu service (systemd EnvironmentFile). KELIU_<SECTION>_<KEY> overrides keliu.toml, e.g.
# KELIU_SMS_TENCENT_SECRET_KEY=...
# KELIU_DATABASE_URL=postgresql+psycopg://keliu:...@db.example/keliu
EOF
fi
as_keliu "$KELIU" config --check
# Values the host setup below needs, read through keliu's own validated loader.
read -r LAN_IFACE PORTAL_ADDR WAN_IFACE BROKER MONITOR_PHY MONITOR_IFACE STAFF_BRIDGE WLAN_IFACE HOSTAPD_CTRL_DIR \
  HOSTAPD_GROUP < <(as_keliu "$PREFIX/bin/python" -c '
import netaddr
from keliu import config
from router_config import render
c = config.load()
r = c.router
print(r.lan_iface, f"{r.portal_ip}/{netaddr.IPNetwork(r.lan_cidr).prefixlen}", r.wan_iface,
      c.analytics.broker_url or "-", r.monitor_phy, r.monitor_iface, r.staff_bridge if r.staff_ssid else "-",
      r.wlan_iface, render.HOSTAPD_CTRL_DIR, render.HOSTAPD_CTRL_GROUP)')
if [ -n "$WAN" ] && [ "$WAN" != "$WAN_IFACE" ]; then
  die "--wan $WAN, but router.wan_iface = $WAN_IFACE in $ETC/keliu.toml: make them agree"
fi
if [ -n "$SENSOR_PHY" ] && [ "$SENSOR_PHY" != "$MONITOR_PHY" ]; then
  die "--sensor-phy $SENSOR_PHY, but router.monitor_phy = $MONITOR_PHY in $ETC/keliu.toml: make them agree"
fi

if [ "$ROLE" = router ]; then
# --- kernel ---------------------------------------------------------------------------------------------------
cat >/etc/sysctl.d/90-keliu.conf <<'EOF'
# keliu router: forward between LAN and WAN (IPv6 is not forwarded: router.ipv6 = "block")
net.ipv4.ip_forward = 1
# the portal binds the LAN address even if the bridge is not up yet at boot
net.ipv4.ip_nonlocal_bind = 1
EOF
sysctl -q -p /etc/sysctl.d/90-keliu.conf
if [ "$HWSIM" = 1 ]; then
  echo mac80211_hwsim >/etc/modules-load.d/keliu-hwsim.conf
  echo "options mac80211_hwsim radios=3" >/etc/modprobe.d/keliu-hwsim.conf
  modprobe mac80211_hwsim radios=3 || say "mac80211_hwsim not available in this kernel: no AP, no sensor"
fi

# --- the LAN bridge (systemd-networkd; the WAN keeps whatever configures it today) -----------------------------
install -d /etc/systemd/network
cat >"/etc/systemd/network/10-keliu-$LAN_IFACE.netdev" <<EOF
# written by keliu provision.sh from router.lan_iface
[NetDev]
Name=$LAN_IFACE
Kind=bridge
EOF
cat >"/etc/systemd/network/10-keliu-$LAN_IFACE.network" <<EOF
# written by keliu provision.sh from router.portal_ip and router.lan_cidr
[Match]
Name=$LAN_IFACE

[Link]
# boot must not wait for LAN clients (systemd-networkd-wait-online)
RequiredForOnline=no

[Network]
Address=$PORTAL_ADDR
ConfigureWithoutCarrier=yes
IPv6AcceptRA=no
LinkLocalAddressing=no
EOF
rm -f /etc/systemd/network/11-keliu-port-*.network
# port_into BRIDGE PORT: make a wired port a member of a bridge
port_into() {
  cat >"/etc/systemd/network/11-keliu-port-$2.network" <<EOF
# written by keliu provision.sh (--lan-ports / --staff-ports)
[Match]
Name=$2

[Link]
RequiredForOnline=no

[Network]
Bridge=$1
LinkLocalAddressing=no
IPv6AcceptRA=no
EOF
}
for port in ${LAN_PORTS//,/ }; do port_into "$LAN_IFACE" "$port"; done
rm -f /etc/systemd/network/10-keliu-staff-*.netdev
if [ "$STAFF_BRIDGE" != - ]; then
  # The staff SSID (hostapd bss) joins this bridge; the shop's own network (its DHCP, its router) is on its ports.
  cat >"/etc/systemd/network/10-keliu-staff-$STAFF_BRIDGE.netdev" <<EOF
# written by keliu provision.sh from router.staff_bridge (router.staff_ssid is set)
[NetDev]
Name=$STAFF_BRIDGE
Kind=bridge
EOF
  for port in ${STAFF_PORTS//,/ }; do port_into "$STAFF_BRIDGE" "$port"; done
elif [ -n "$STAFF_PORTS" ]; then
  die "--staff-ports needs router.staff_ssid in $ETC/keliu.toml"
fi
systemctl enable -q systemd-networkd
# Enabling networkd enables systemd-networkd-wait-online too, which waits until a link networkd manages is online.
# keliu's bridges must not hold the boot (RequiredForOnline=no above), so when networkd manages nothing else (the WAN
# is configured by ifupdown, NetworkManager or a test) it can only time out after 2 minutes: every boot was 2 minutes
# late (the units ordered after network-online.target waited) and "degraded". It is skipped then; a WAN that a
# .network file of networkd configures keeps it.
wan_by_networkd=0
for f in /etc/systemd/network/*.network; do
  case "$f" in */10-keliu-* | */11-keliu-*) continue ;; esac
  [ -f "$f" ] || continue
  # shellcheck disable=SC2013 # Name= lists names separated by spaces: words, as networkd splits them
  for name in $(sed -n 's/^[[:space:]]*Name[[:space:]]*=//p' "$f"); do
    # shellcheck disable=SC2254 # the name is a glob, as networkd reads it
    case "$WAN_IFACE" in $name) wan_by_networkd=1 ;; esac
  done
done
wait_online=/etc/systemd/system/systemd-networkd-wait-online.service.d
if [ "$wan_by_networkd" = 1 ]; then
  rm -f "$wait_online/keliu.conf"
else
  install -d "$wait_online"
  cat >"$wait_online/keliu.conf" <<EOF
# written by keliu provision.sh: networkd manages only keliu's LAN bridges here (RequiredForOnline=no), not the WAN
# $WAN_IFACE, so this unit has nothing to wait for (it would fail after its timeout and hold the boot up 2 minutes)
[Unit]
ConditionPathExists=!/etc/systemd/network/10-keliu-$LAN_IFACE.network
EOF
fi
[ "$START" = 1 ] && systemctl restart systemd-networkd

# --- dnsmasq and hostapd: rendered by keliu from keliu.toml, never hand-written ---------------------------------
# hostapd.conf gives its control socket to this group (ctrl_interface_group), and hostapd refuses a group that does
# not exist: it is keliu-stations' supplementary group, nobody else's.
if ! getent group "$HOSTAPD_GROUP" >/dev/null; then
  say "creating system group $HOSTAPD_GROUP (hostapd's control socket)"
  groupadd --system "$HOSTAPD_GROUP"
fi
# Rendered as the keliu user into a scratch directory, then installed: a failed render keeps the old files.
rendered="$(mktemp -d)"
chown keliu "$rendered"
as_keliu "$KELIU" router render --out "$rendered" >/dev/null
install -m 0644 "$rendered/dnsmasq.conf" /etc/dnsmasq.d/keliu.conf
# hostapd.conf holds the staff passphrase when there is a staff SSID
install -m 0600 "$rendered/hostapd.conf" /etc/hostapd/hostapd.conf
rm -rf "$rendered"
# Debian ships hostapd masked; it runs only where there is a radio for the AP.
ap_radio=0
if iw dev 2>/dev/null | grep -q Interface; then ap_radio=1; fi
systemctl unmask -q hostapd
if [ "$ap_radio" = 1 ]; then systemctl enable -q hostapd; else systemctl disable -q hostapd; say "no radio: hostapd off"; fi
systemctl enable -q dnsmasq
fi # router

# --- keliu's systemd units (from the repository) ----------------------------------------------------------------
install -m 0644 "$DEPLOY"/systemd/keliu-*.service /etc/systemd/system/
if [ "$NO_SENSOR" = 1 ]; then
  rm -f "$ETC/sensor.env"
elif [ -n "$SENSOR_PHY" ] || [ -f "$ETC/sensor.env" ]; then
  # Enables keliu-sensor; `keliu router monitor` creates router.monitor_iface on phy<router.monitor_phy>.
  cat >"$ETC/sensor.env" <<EOF
# written by provision.sh from keliu.toml (router.monitor_iface on phy$MONITOR_PHY); delete to disable the sensor
MONITOR_IFACE=$MONITOR_IFACE
EOF
fi
if [ "$ROLE" = router ] && [ "$ap_radio" = 1 ]; then
  # Enables keliu-stations: hostapd serves the guest SSID here, its station list is read through this socket.
  cat >"$ETC/stations.env" <<EOF
# written by provision.sh from keliu.toml (router.wlan_iface): hostapd's control socket of the guest SSID, read by
# keliu-stations; rewritten (or deleted when there is no AP radio) by every run of provision.sh
HOSTAPD_CTRL=$HOSTAPD_CTRL_DIR/$WLAN_IFACE
EOF
else
  rm -f "$ETC/stations.env"
fi
systemctl daemon-reload

# Schema and tenants (idempotent: alembic upgrade), as the user that owns the database.
as_keliu "$KELIU" db

units=()
off=()
if [ "$ROLE" = router ]; then
  units+=(keliu-router keliu-portal)
  if [ -f "$ETC/sensor.env" ] && [ "$NO_SENSOR" = 0 ]; then units+=(keliu-sensor); else off+=(keliu-sensor); fi
  if [ -f "$ETC/stations.env" ]; then units+=(keliu-stations); else off+=(keliu-stations); fi
else
  off+=(keliu-router keliu-portal keliu-sensor keliu-stations)
fi
case "$ANALYTICS" in
  embedded) units+=(keliu-analytics); off+=(keliu-analytics-worker keliu-analytics-beat) ;;
  celery)
    [ "$BROKER" != - ] || die "--analytics celery needs analytics.broker_url in $ETC/keliu.toml"
    units+=(keliu-analytics-worker keliu-analytics-beat); off+=(keliu-analytics) ;;
  none) off+=(keliu-analytics keliu-analytics-worker keliu-analytics-beat) ;;
esac
if [ "$WITH_REDIS" = 1 ]; then systemctl enable -q redis-server; fi
systemctl disable -q --now "${off[@]}" 2>/dev/null || true
systemctl enable -q "${units[@]}"

if [ "$START" = 1 ]; then
  [ "$WITH_REDIS" = 1 ] && systemctl start redis-server
  if [ "$ROLE" = router ]; then
    # keliu-router first (the nftables table), then what depends on it; restart picks up new code and config.
    # Restarting keliu-router restarts a running keliu-portal too (PartOf=); start covers one that was not running.
    systemctl restart keliu-router
    systemctl start keliu-portal
    systemctl restart dnsmasq
    [ "$ap_radio" = 1 ] && systemctl restart hostapd
  fi
  # the others: keliu-router and keliu-portal once each (again would apply the whole table again, and make the
  # phones wait for a second portal start)
  rest=()
  for unit in "${units[@]}"; do case "$unit" in keliu-router | keliu-portal) ;; *) rest+=("$unit") ;; esac; done
  if [ "${#rest[@]}" -gt 0 ]; then systemctl restart "${rest[@]}"; fi
fi

if [ "$ROLE" = router ]; then
  say "done: WAN $WAN_IFACE, LAN $LAN_IFACE $PORTAL_ADDR, services ${units[*]}"
  say "admin password: $VAR/keys/admin_password (generated by the portal on first start)"
else
  say "done: central analytics, services ${units[*]}"
fi
