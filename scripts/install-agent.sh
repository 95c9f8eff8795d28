#!/usr/bin/env bash
# Installs the vmwarden agent on a libvirt host (run as root from a built checkout: npm ci && npm run build):
# copies the build to /opt/vmwarden, installs the systemd unit, and installs the libvirt hook that
# makes libvirtd ask the agent before starting an instance. Idempotent.
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
dest="${VMWARDEN_PREFIX:-/opt/vmwarden}"
[ -f "$src/dist/agent/src/main.js" ] || { echo "build first: npm ci && npm run build" >&2; exit 1; }

mkdir -p "$dest"
# dist (compiled code), proto (loaded at run time), runtime node modules, package metadata
cp -a "$src/dist" "$src/proto" "$src/package.json" "$src/package-lock.json" "$src/README.md" "$dest/"
( cd "$dest" && npm ci --omit=dev --no-audit --no-fund >/dev/null )

install -m 0644 "$src/systemd/vmwarden-agent.service" /etc/systemd/system/vmwarden-agent.service
mkdir -p /etc/vmwarden
[ -f /etc/vmwarden/agent.yaml ] || printf '# see README.md (agent configuration)\ncontroller: 127.0.0.1:9363\n' > /etc/vmwarden/agent.yaml

# The hook runs `node $dest/dist/agent/src/enforce/hook.js`, asks /run/vmwarden/agent.sock and falls
# back to /var/lib/vmwarden-agent/enforcement.json when the agent is down.
out="$(node "$dest/dist/agent/src/main.js" install-hook --socket /run/vmwarden/agent.sock --data-dir /var/lib/vmwarden-agent)"
echo "$out"
systemctl daemon-reload 2>/dev/null || true
echo "installed to $dest; enroll with: node $dest/dist/agent/src/main.js enroll --controller HOST:9363 --token TOKEN --data-dir /var/lib/vmwarden-agent"
echo "then: systemctl enable --now vmwarden-agent"
case "$out" in *"restart libvirtd"*) echo "NOTE: restart libvirtd (systemctl restart libvirtd) so it runs the new hook" ;; esac
