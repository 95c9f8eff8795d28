#!/usr/bin/env bash
# Builds the Debian 12 guest used by the end-to-end tests (test/agent/guest/): a raw ext4 root filesystem
# image plus the kernel and initrd for direct kernel boot (root=/dev/vda). Needs root, debootstrap and
# e2fsprogs (mkfs.ext4 -d: the image is filled without mounting anything).
#
# Cached in ~/.cache/vmwarden/guest/<sha256 of this script>/; a second run only prints the paths.
# Last output line: {"disk":"…","kernel":"…","initrd":"…"} (absolute paths). Callers must not write
# to the cached disk: copy it (cp --sparse=always) or put a qcow2 overlay on it.
set -euo pipefail

script="$(readlink -f "${BASH_SOURCE[0]}")"
hash="$(sha256sum "$script" | cut -c1-64)"
cache="${VMWARDEN_GUEST_CACHE:-${HOME}/.cache/vmwarden/guest}"
out="$cache/$hash"
mirror="${VMWARDEN_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

emit() { printf '{"disk":"%s","kernel":"%s","initrd":"%s"}\n' "$out/disk.raw" "$out/vmlinuz" "$out/initrd.img"; }

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [ -f "$out/done" ]; then emit; exit 0; fi
[ "$(id -u)" = 0 ] || { echo "build-test-guest: needs root (debootstrap)" >&2; exit 1; }

work="$(mktemp -d "$cache/.build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
root="$work/root"

echo "build-test-guest: debootstrap bookworm into $root" >&2
debootstrap --variant=minbase \
  --include=systemd-sysv,udev,openssh-server,qemu-guest-agent,linux-image-cloud-amd64,initramfs-tools,iproute2,tmux,procps \
  bookworm "$root" "$mirror" >&2

echo "build-test-guest: configuring" >&2
echo vmwarden-guest >"$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 vmwarden-guest\n' >"$root/etc/hosts"
printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' >"$root/etc/fstab"
: >"$root/etc/machine-id" # generated at first boot
rm -f "$root/var/lib/dbus/machine-id"

# Root password locked (no password login at all; access is by SSH certificate only).
sed -i -E 's/^root:[^:]*:/root:*:/' "$root/etc/shadow"

# DHCP on eth0 (net.ifnames=0 on the kernel command line) via systemd-networkd.
mkdir -p "$root/etc/systemd/network"
cat >"$root/etc/systemd/network/10-eth.network" <<'NET'
[Match]
Name=eth* en*

[Network]
DHCP=yes
NET
enable() { # enable(unit, target): what `systemctl enable` does, without running systemctl
  mkdir -p "$root/etc/systemd/system/$2.wants"
  local src
  for src in "$root/lib/systemd/system/$1" "$root/usr/lib/systemd/system/$1"; do
    if [ -e "$src" ]; then ln -sf "${src#"$root"}" "$root/etc/systemd/system/$2.wants/$1"; return; fi
  done
  echo "build-test-guest: unit $1 not found" >&2; exit 1
}
enable systemd-networkd.service multi-user.target
enable ssh.service multi-user.target

# Host keys: generated at first boot, so that every guest has its own.
rm -f "$root"/etc/ssh/ssh_host_*
mkdir -p "$root/etc/systemd/system/ssh.service.d"
cat >"$root/etc/systemd/system/ssh.service.d/hostkeys.conf" <<'UNIT'
[Service]
ExecStartPre=
ExecStartPre=/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
UNIT

# Faster boot: nothing waits for the network to be "online".
rm -f "$root/etc/systemd/system/network-online.target.wants/"* 2>/dev/null || true

# Smaller image.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/*

kver="$(ls "$root/boot" | sed -n 's/^vmlinuz-//p' | sort -V | tail -1)"
[ -n "$kver" ] && [ -f "$root/boot/initrd.img-$kver" ] || { echo "build-test-guest: kernel/initrd missing" >&2; exit 1; }
mkdir -p "$work/out"
cp "$root/boot/vmlinuz-$kver" "$work/out/vmlinuz"
cp "$root/boot/initrd.img-$kver" "$work/out/initrd.img"

echo "build-test-guest: mkfs.ext4 -d" >&2
truncate -s 3G "$work/out/disk.raw"
mkfs.ext4 -q -F -L vmwarden-root -d "$root" "$work/out/disk.raw" >&2
touch "$work/out/done"
rm -rf "$out"
mv "$work/out" "$out"
emit
