#!/usr/bin/env bash
# install-exporter.sh: node_exporter plus the runner-metrics timer on a runner VM, with the scrape port
# reachable only from the Prometheus host. Runs as root (through sudo) from a Pulumi remote command;
# idempotent: a second run with the same input changes nothing and says so.
#
# Environment:
#   EXPORTER_PORT        port node_exporter listens on                          (required)
#   SCRAPE_FROM          the only IPv4 address allowed to connect to the port   (required)
#   SOURCE_DIR           where the metrics script and units were copied to      (required)
#   RUNNER_FLEET_ROOT    prefix for every path written (tests)                  [empty]
#   RUNNER_FLEET_SYSTEMCTL, RUNNER_FLEET_APT, RUNNER_FLEET_NFT  commands (tests) [systemctl, apt-get, nft]
set -euo pipefail
umask 022

die() {
  echo "install-exporter: $*" >&2
  exit 2
}

port=${EXPORTER_PORT:-}
scrape_from=${SCRAPE_FROM:-}
src=${SOURCE_DIR:-}
root=${RUNNER_FLEET_ROOT:-}
systemctl_cmd=${RUNNER_FLEET_SYSTEMCTL:-systemctl}
apt_cmd=${RUNNER_FLEET_APT:-apt-get}
nft_cmd=${RUNNER_FLEET_NFT:-nft}

if ! [[ $port =~ ^[0-9]{4,5}$ ]] || ((port < 1024 || port > 65535)); then
  die "EXPORTER_PORT must be a port number 1024-65535"
fi
[[ $scrape_from =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}$ ]] || die "SCRAPE_FROM must be an IPv4 address"
for f in runner-metrics.sh runner-metrics.service runner-metrics.timer; do
  [[ -f $src/$f ]] || die "missing $src/$f"
done

changed=0
# install_file SRC DEST MODE: copies when the content differs; sets changed=1 when it did.
install_file() {
  if ! cmp -s "$1" "$2"; then
    install -D -m "$3" "$1" "$2"
    changed=1
    return 0
  fi
  return 1
}

# 1. node_exporter from Debian's package.
if ! dpkg_status=$(dpkg-query -W -f='${Status}' prometheus-node-exporter 2>/dev/null) ||
  [[ $dpkg_status != "install ok installed" ]]; then
  DEBIAN_FRONTEND=noninteractive "$apt_cmd" install -y -q prometheus-node-exporter >/dev/null
  changed=1
fi

# 2. Its arguments: our port, the textfile directory the metrics script writes to.
tmp=$(mktemp)
trap 'rm -f -- "$tmp"' EXIT
printf 'ARGS="--web.listen-address=:%s --collector.textfile.directory=/var/lib/prometheus/node-exporter"\n' "$port" >"$tmp"
if install_file "$tmp" "$root/etc/default/prometheus-node-exporter" 0644; then
  "$systemctl_cmd" restart prometheus-node-exporter
fi

# 3. The metrics script and its timer.
install -d -m 0755 "$root/var/lib/prometheus/node-exporter"
install_file "$src/runner-metrics.sh" "$root/usr/local/lib/runner-fleet/runner-metrics.sh" 0755 || true
units_changed=0
for unit in runner-metrics.service runner-metrics.timer; do
  if install_file "$src/$unit" "$root/etc/systemd/system/$unit" 0644; then units_changed=1; fi
done
if ((units_changed)); then "$systemctl_cmd" daemon-reload; fi
if ! "$systemctl_cmd" is-enabled --quiet runner-metrics.timer 2>/dev/null; then
  "$systemctl_cmd" enable --now runner-metrics.timer
  changed=1
fi

# 4. Only the Prometheus host may reach the exporter port.
cat >"$tmp" <<EOF
table inet runner_fleet_exporter
delete table inet runner_fleet_exporter
table inet runner_fleet_exporter {
  chain input {
    type filter hook input priority 0; policy accept;
    tcp dport $port ip saddr != $scrape_from drop
    tcp dport $port meta nfproto ipv6 drop
  }
}
EOF
if install_file "$tmp" "$root/etc/runner-fleet/exporter.nft" 0644; then
  "$nft_cmd" -f "$root/etc/runner-fleet/exporter.nft"
fi
cat >"$tmp" <<EOF
[Unit]
Description=Restrict the node_exporter port to the Prometheus host
Before=prometheus-node-exporter.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/sbin/nft -f /etc/runner-fleet/exporter.nft

[Install]
WantedBy=multi-user.target
EOF
if install_file "$tmp" "$root/etc/systemd/system/runner-fleet-exporter-firewall.service" 0644; then
  "$systemctl_cmd" daemon-reload
  "$systemctl_cmd" enable runner-fleet-exporter-firewall.service
fi

if ((changed)); then
  echo "install-exporter: converged (port $port, scrape from $scrape_from)"
else
  echo "install-exporter: already converged"
fi
