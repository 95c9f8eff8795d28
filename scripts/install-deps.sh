#!/usr/bin/env bash
# Debian 12 packages vmwarden builds and tests with. Idempotent; installs only what is missing (as root:
# `sudo bash scripts/install-deps.sh` for a user). --list-missing prints the missing ones and changes
# nothing (exit 3 when there is no dpkg-query to ask): what scripts/ensure-setup.mjs asks first.
set -euo pipefail
packages=(
  build-essential python3 pkg-config libvirt-dev   # native modules (sqlite3, @unraid/libvirt, ssh2) build from source
  libvirt-clients libvirt-daemon-driver-qemu        # virsh, and libvirt's test:///default driver
  qemu-utils                                        # qemu-img: backing chains and sparse maps of disk images
  libnbd-bin                                        # nbdinfo --map: a qcow2 disk's dirty bitmap for incremental seals
  openssh-client openssh-server openssl sqlite3     # real ssh-keygen/sshd/ssh and openssl in tests
  b3sum                                             # reference hasher in the hashing benchmark
  libvirt-daemon-system qemu-system-x86 dnsmasq-base # a real libvirtd + QEMU (TCG) for enforcement tests
  debootstrap e2fsprogs                              # the Debian guest of test/agent/guest (scripts/build-test-guest.sh)
  postgresql                                         # the shared store of several controllers (tests start throwaway clusters)
  curl                                               # the libvirt hook (sh + curl to the agent's hook.sock)
  netcat-openbsd                                     # nc.openbsd: the hook's client when installed (starts ~10 ms faster than curl)
  jq                                                 # JSON on the command line (vmwarden -o json, the REST API)
  qemu-guest-agent                                   # tests run the real qemu-ga on a host socket (the guest side of KRL updates)
)
if ! command -v dpkg-query >/dev/null; then
  [ "${1:-}" = --list-missing ] && exit 3
  echo "install-deps: no dpkg-query: this script installs Debian packages" >&2
  exit 1
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${1:-}" = --list-missing ]; then
  [ "${#missing[@]}" -gt 0 ] && printf '%s\n' "${missing[@]}"
  exit 0
fi
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing Debian packages: ${missing[*]}; run: sudo bash scripts/install-deps.sh" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if [ "$(id -u)" = 0 ]; then mkdir -p /run/sshd; fi
