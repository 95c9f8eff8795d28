#!/usr/bin/env bash
# Installs the vmwarden controller (run as root from a checkout). Idempotent:
#   - builds (npm ci && npm run build) unless dist/ already holds a build,
#   - copies the build to /opt/vmwarden (VMWARDEN_PREFIX) with its runtime node modules,
#   - creates the `vmwarden` system user, /var/lib/vmwarden (0700) and /etc/vmwarden (+ controller.yaml),
#   - installs systemd/vmwarden-controller.service and the `vmwarden` CLI (/usr/local/bin/vmwarden),
#   - runs `systemctl daemon-reload` only when systemd is the running init.
# VMWARDEN_ROOT (default /) installs into another root, for packaging and tests.
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
root="${VMWARDEN_ROOT:-}"
root="${root%/}"
dest="$root${VMWARDEN_PREFIX:-/opt/vmwarden}"
state="$root/var/lib/vmwarden"
etc="$root/etc/vmwarden"
unitdir="$root/etc/systemd/system"
bindir="$root/usr/local/bin"

if [ "$(id -u)" -ne 0 ] && [ -z "$root" ]; then
  echo "install-controller: run as root (or set VMWARDEN_ROOT to install into a staging directory)" >&2
  exit 1
fi
command -v node >/dev/null || { echo "install-controller: node (>= 20.17) is not installed: run scripts/install-deps.sh" >&2; exit 1; }

if [ ! -f "$src/dist/controller/src/main.js" ]; then
  echo "building in $src"
  ( cd "$src" && npm ci --no-audit --no-fund && npm run build )
fi

mkdir -p "$dest"
# dist (compiled code), proto (loaded at run time), package metadata; then the runtime node modules
cp -a "$src/dist" "$src/proto" "$src/package.json" "$src/package-lock.json" "$src/README.md" "$dest/"
if [ -z "${VMWARDEN_SKIP_NPM:-}" ]; then
  ( cd "$dest" && npm ci --omit=dev --no-audit --no-fund >/dev/null )
fi
chmod 0755 "$dest/dist/controller/src/main.js" "$dest/dist/controller/src/cli/main.js"

# The service user: a system account without a shell or a home of its own.
if [ -z "$root" ] && ! id vmwarden >/dev/null 2>&1; then
  if command -v useradd >/dev/null; then
    useradd --system --user-group --home-dir /var/lib/vmwarden --no-create-home --shell /usr/sbin/nologin vmwarden
  else
    adduser --system --group --home /var/lib/vmwarden --no-create-home --shell /usr/sbin/nologin vmwarden
  fi
fi

install -d -m 0700 "$state"
install -d -m 0755 "$etc"
if [ -z "$root" ]; then chown vmwarden:vmwarden "$state"; fi
if [ ! -f "$etc/controller.yaml" ]; then
  cat > "$etc/controller.yaml" <<'YAML'
# vmwarden controller configuration (keys: README.md, "Configuration"). Env VMWARDEN_* and flags win.
dataDir: /var/lib/vmwarden
listenHttp: 127.0.0.1:9362
listenHttps: 0.0.0.0:9443
listenGrpc: 0.0.0.0:9363
YAML
  chmod 0644 "$etc/controller.yaml"
fi

install -d -m 0755 "$unitdir" "$bindir"
install -m 0644 "$src/systemd/vmwarden-controller.service" "$unitdir/vmwarden-controller.service"
ln -sfn "${VMWARDEN_PREFIX:-/opt/vmwarden}/dist/controller/src/cli/main.js" "$bindir/vmwarden"

# daemon-reload only when systemd runs this machine (not in containers/chroots without it).
if [ -z "$root" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
  systemctl daemon-reload
  echo "installed to $dest; start with: systemctl enable --now vmwarden-controller"
  echo "the admin password is then in /var/lib/vmwarden/admin-password (mode 0600)"
else
  echo "installed to $dest (systemd is not running here: no daemon-reload)"
fi
