#!/usr/bin/env bash
# Build the test VM's disk image from Debian's packages, or reuse the one already built.
#
# usage: mkimage.sh CACHE_DIR DEPS_DIR    prints the image's directory (CACHE_DIR/image-<hash>) on stdout
#
# DEPS_DIR: keliu's dependencies as wheels for Debian's python3, with requirements.txt (keliu's own requirements)
# and test-requirements.txt (tests/vm/conftest.py's ``deps``; its name carries the hash of pyproject.toml).
#
# The image is a plain Debian 12 (systemd, the kernel and its modules, hostapd, wpasupplicant, iw, dnsmasq,
# nftables, conntrack, python3) made by mmdebstrap from the host's apt sources, plus the command channel's agent
# (tests/vm/agent.py), plus keliu's dependencies installed into /opt/keliu the way provision.sh installs them from a
# wheelhouse (Debian's python3 -m venv, pip --no-index). keliu itself is NOT in it: every test run installs it with
# provision.sh, the way a real router gets it (provision.sh finds the venv and its dependencies and installs keliu's
# wheel). Under TCG, installing and byte-compiling the ~45 dependency wheels was most of provision.sh's 5 minutes;
# here it runs at the host's native speed, once per pyproject.toml. The directory holds vmlinuz, initrd.img (booted with qemu -kernel/-initrd, no boot loader) and
# root.img (ext4, never written to: each run boots a qcow2 overlay on it). Its name is a hash of this script and of
# agent.py, so an edit of either builds a new image and the old one is left for `rm -rf`. The packages provision.sh
# installs must all be here: the VM has no mirror, and test_provision_sh_runs_end_to_end fails if it tries one.
set -euo pipefail

cache="${1:?usage: mkimage.sh CACHE_DIR DEPS_DIR}"
deps="$(cd "${2:?usage: mkimage.sh CACHE_DIR DEPS_DIR}" && pwd)"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
hash="$({ cat "$here/mkimage.sh" "$here/agent.py"; basename "$deps"; } | sha256sum | cut -c1-16)"
out="$cache/image-$hash"
if [ -f "$out/ok" ]; then echo "$out"; exit 0; fi

say() { printf 'mkimage: %s\n' "$*" >&2; }
[ "$(id -u)" = 0 ] || { say "needs root (mmdebstrap, mkfs.ext4 -d with root-owned files)"; exit 1; }
command -v mmdebstrap >/dev/null || { say "mmdebstrap is not installed"; exit 1; }

mkdir -p "$cache"
work="$(mktemp -d "$cache/build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
root="$work/root"

packages=(
  # boot: systemd as init, udev, the kernel with its modules and an initramfs
  systemd systemd-sysv udev dbus linux-image-amd64 initramfs-tools zstd kmod
  # what provision.sh would otherwise apt-get (the VM has no route to a mirror)
  python3 python3-venv nftables dnsmasq hostapd iw iproute2 conntrack wireless-regdb tzdata libpcap0.8
  # the test's phone, its "internet" and the checks
  wpasupplicant busybox curl procps iputils-ping netbase ca-certificates openssl
)
say "mmdebstrap bookworm (${#packages[@]} packages and their dependencies) into $root"
start=$SECONDS
# The initramfs only needs what mounts an ext4 root from virtio-blk: a short module list boots faster under TCG
# than Debian's MODULES=most. The hook runs before the kernel package, so its postinst builds the small one.
nice -n 10 mmdebstrap --variant=apt --mode=root --format=directory \
  --include="$(IFS=,; echo "${packages[*]}")" \
  --essential-hook='mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/etc/initramfs-tools/hooks"' \
  --essential-hook='printf "MODULES=list\nCOMPRESS=zstd\n" > "$1/etc/initramfs-tools/conf.d/keliu-vm.conf"' \
  --essential-hook='printf "#!/bin/sh\n[ \"\$1\" = prereqs ] && exit 0\n. /usr/share/initramfs-tools/hook-functions\nfor m in virtio_pci virtio_blk virtio_console ext4 crc32c_generic; do manual_add_modules \$m; done\n" > "$1/etc/initramfs-tools/hooks/keliu-vm"; chmod 755 "$1/etc/initramfs-tools/hooks/keliu-vm"' \
  bookworm "$root" >&2
say "mmdebstrap took $((SECONDS - start)) s"

# --- the guest's configuration ------------------------------------------------------------------------------------
echo keliu-vm >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tkeliu-vm\n' >"$root/etc/hosts"
printf 'LABEL=keliu-root / ext4 rw,errors=remount-ro 0 1\n' >"$root/etc/fstab"
# The router's upstream DNS is the test's "internet" namespace (tests/vm/guest.sh).
printf 'nameserver 198.51.100.1\n' >"$root/etc/resolv.conf"
chroot "$root" passwd --delete root >/dev/null
# The serial console is the place to look when the agent does not answer: a root shell there without a password.
install -d "$root/etc/systemd/system/serial-getty@ttyS0.service.d"
printf '[Service]\nExecStart=\nExecStart=-/sbin/agetty --autologin root --keep-baud 115200 %%I $TERM\n' \
  >"$root/etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf"
# Nothing in a throw-away VM should wake up on a timer and eat the emulated CPU.
for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
         man-db.timer dpkg-db-backup.timer systemd-tmpfiles-clean.timer; do
  ln -sf /dev/null "$root/etc/systemd/system/$u"
done
# Debian starts these on install; provision.sh decides whether they run.
chroot "$root" systemctl disable -q dnsmasq 2>/dev/null || true
# the command channel
install -m 0755 "$here/agent.py" "$root/usr/local/sbin/keliu-vm-agent"
cat >"$root/etc/systemd/system/keliu-vm-agent.service" <<'EOF'
[Unit]
Description=keliu test VM agent (virtio-serial command channel)
DefaultDependencies=no
After=systemd-udevd.service local-fs.target

[Service]
ExecStart=/usr/local/sbin/keliu-vm-agent
Restart=always
RestartSec=1

[Install]
WantedBy=sysinit.target
EOF
chroot "$root" systemctl enable -q keliu-vm-agent
install -d "$root/mnt/keliu" "$root/mnt/wheels"

# keliu's dependencies in /opt/keliu (provision.sh's PREFIX), and pytest beside them in /opt/keliu-test for the tests
# of this tree that need the VM's radios (tests/vm/test_router.py); the chroot's python3 is the VM's
say "installing keliu's dependencies into /opt/keliu"
mkdir "$root/tmp/deps"
cp "$deps"/*.whl "$deps/requirements.txt" "$deps/test-requirements.txt" "$root/tmp/deps/"
pip_deps() { chroot "$root" "$1/bin/pip" install -q --disable-pip-version-check --no-index --find-links /tmp/deps "${@:2}"; }
chroot "$root" python3 -m venv /opt/keliu
pip_deps /opt/keliu -r /tmp/deps/requirements.txt
chroot "$root" python3 -m venv /opt/keliu-test
pip_deps /opt/keliu-test -r /tmp/deps/test-requirements.txt
echo /opt/keliu/lib/python3.11/site-packages >"$(echo "$root"/opt/keliu-test/lib/python3.*/site-packages)/keliu-venv.pth"
rm -rf "$root/tmp/deps"

# --- kernel, initramfs and the ext4 image -------------------------------------------------------------------------
mkdir -p "$work/image"
cp "$(ls "$root"/boot/vmlinuz-* | sort -V | tail -1)" "$work/image/vmlinuz"
cp "$(ls "$root"/boot/initrd.img-* | sort -V | tail -1)" "$work/image/initrd.img"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*_Packages
size_mb=$(( $(du -sm "$root" | cut -f1) + 1536 ))
nice -n 10 mkfs.ext4 -q -L keliu-root -d "$root" "$work/image/root.img" "${size_mb}M"
touch "$work/image/ok"
rm -rf "$out"
mv "$work/image" "$out"
say "image $out ($((SECONDS - start)) s)"
echo "$out"
