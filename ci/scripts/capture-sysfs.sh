#!/bin/sh
# Captures the parts of sysfs and procfs that `pairos boards probe` reads into OUT, keeping the
# kernel's relative symlinks, so that `pairos boards check --sysfs OUT` sees what the live probe
# saw. Runs under busybox sh inside a lab VM (see ci/tests/lab_boards.rs) or on a real server.
#
#   capture-sysfs.sh OUT
set -u
OUT=${1:?usage: capture-sysfs.sh OUT}
mkdir -p "$OUT"

# Copies one attribute, if it is readable now (a down link has no speed: EINVAL).
file() {
  [ -r "$1" ] || return 0
  v=$(cat "$1" 2>/dev/null) || return 0
  mkdir -p "$OUT${1%/*}"
  printf '%s\n' "$v" > "$OUT$1"
}
# Re-creates a symlink with the kernel's own (relative) target.
link() {
  [ -L "$1" ] || return 0
  mkdir -p "$OUT${1%/*}"
  ln -sfn "$(readlink "$1")" "$OUT$1"
}

for f in sys_vendor product_name product_version board_vendor board_name bios_vendor bios_version; do
  file "/sys/class/dmi/id/$f"
done
# The probe only asks whether the folder exists; a file in it keeps it in git.
if [ -d /sys/firmware/efi ]; then
  mkdir -p "$OUT/sys/firmware/efi"
  file /sys/firmware/efi/fw_platform_size
  [ -e "$OUT/sys/firmware/efi/fw_platform_size" ] || echo 64 > "$OUT/sys/firmware/efi/fw_platform_size"
fi

for d in /sys/bus/pci/devices/*; do
  link "$d"
  r=$(readlink -f "$d")
  for f in vendor device class subsystem_vendor subsystem_device label acpi_index index; do
    file "$r/$f"
  done
  link "$r/driver"
done

for n in /sys/class/net/*; do
  link "$n"
  r=$(readlink -f "$n")
  for f in address carrier speed operstate type; do file "$r/$f"; done
  if [ -L "$r/device" ]; then
    link "$r/device"
    link "$(readlink -f "$r/device")/driver"
  fi
done

for b in /sys/block/*; do
  link "$b"
  r=$(readlink -f "$b")
  for f in size removable ro queue/rotational; do file "$r/$f"; done
  if [ -L "$r/device" ]; then
    link "$r/device"
    dv=$(readlink -f "$r/device")
    file "$dv/model"
    file "$dv/vendor"
  fi
done

mkdir -p "$OUT/proc"
cat /proc/cpuinfo > "$OUT/proc/cpuinfo"
cat /proc/meminfo > "$OUT/proc/meminfo"
echo "capture-sysfs: wrote $OUT"
