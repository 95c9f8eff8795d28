#!/usr/bin/env bash
# Debian 12 packages vmwarden builds and tests with. Idempotent; installs only what is missing.
set -euo pipefail
packages=(
  build-essential python3 pkg-config libvirt-dev   # native modules (sqlite3, @unraid/libvirt, ssh2) build from source
  libvirt-clients libvirt-daemon-driver-qemu        # virsh, and libvirt's test:///default driver
  qemu-utils                                        # qemu-img: backing chains and sparse maps of disk images
  openssh-client openssh-server openssl sqlite3     # real ssh-keygen/sshd/ssh and openssl in tests
  b3sum                                             # reference hasher in the hashing benchmark
  libvirt-daemon-system qemu-system-x86 dnsmasq-base # a real libvirtd + QEMU (TCG) for enforcement tests
  debootstrap e2fsprogs                              # the Debian guest of test/agent/guest (scripts/build-test-guest.sh)
  postgresql                                         # the shared store of several controllers (tests start throwaway clusters)
  curl                                               # the libvirt hook (sh + curl to the agent's hook.sock)
  netcat-openbsd                                     # nc.openbsd: the hook's client when installed (starts ~10 ms faster than curl)
  jq                                                 # the README's curl examples read JSON answers with it
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing Debian packages: ${missing[*]}; run: sudo scripts/install-deps.sh" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if [ "$(id -u)" = 0 ]; then mkdir -p /run/sshd; fi
