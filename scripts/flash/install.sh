#!/usr/bin/env bash
# Installs cityedge on an already-flashed Jetson: into a mounted root filesystem directory
# (--rootfs DIR), or over SSH (--ssh [USER@]HOST, sudo on the device). See docs/operations.md, "Flashing and installing".
set -euo pipefail
PROG=cityedge-install
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

usage() {
  cat <<USAGE
Usage: $0 (--rootfs DIR | --ssh [USER@]HOST) --config FILE [options]

  --rootfs DIR      install into this root filesystem directory (a mounted device or image)
  --ssh HOST        install on a running device over SSH (needs sudo there); checks the config
                    there, then enables and starts the service
  --config FILE     the device's config (installed as /etc/cityedge/config.yaml); checked with
                    cityedge check-config before anything is written
$LAYOUT_USAGE
  --dry-run         check the inputs and print what would be done; change nothing
USAGE
}

ROOTFS="" SSH_HOST="" CONFIG="" CERTS="" ENV_FILE="" MODEL_KEY="" DRY_RUN=0
APP="$REPO"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rootfs | --ssh | --config | --app | --certs | --env-file | --model-key | --node | --node-version | --arch | --ort-binding | --detector-from)
      [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value"
      case "$1" in
        --rootfs) ROOTFS="$2" ;;
        --ssh) SSH_HOST="$2" ;;
        *) layout_option "$1" "$2" ;;
      esac
      shift 2
      ;;
    --dry-run) DRY_RUN=1; shift ;;
    --system-node) SYSTEM_NODE=1; shift ;;
    --no-detector) NO_DETECTOR=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument \"$1\"" ;;
  esac
done

if [[ -n "$ROOTFS" && -n "$SSH_HOST" ]]; then die "give --rootfs or --ssh, not both"; fi
if [[ -z "$ROOTFS" && -z "$SSH_HOST" ]]; then usage >&2; die "give --rootfs DIR or --ssh HOST"; fi
check_inputs
check_arch_tree
check_ort_binding
check_config_here

plan() {
  say "plan: /opt/cityedge/app             <- $APP (dist, node_modules, package.json, models, config)"
  if [[ $SYSTEM_NODE -eq 1 ]]; then
    say "plan: /opt/cityedge/bin/cityedge    launcher, on the device's node ($NODE_FOUND_VERSION)"
  elif [[ $DRY_RUN -eq 1 && -z "$NODE_SRC" ]]; then
    say "plan: /opt/cityedge/bin/node        Node $NODE_VERSION for $TARGET_ARCH (npm pack node-linux-$(npm_arch)@$NODE_VERSION)"
  else
    say "plan: /opt/cityedge/bin/node        Node $NODE_FOUND_VERSION for $TARGET_ARCH${NODE_SRC:+ from $NODE_SRC}"
  fi
  if [[ "$NO_DETECTOR" == 1 ]]; then say "plan: no default detector (--no-detector)"; else say "plan: /opt/cityedge/app/models/$DETECTOR <- cityedge models fetch $DETECTOR${DETECTOR_FROM:+ --from $DETECTOR_FROM} (sha256 pinned)"; fi
  if [[ -n "$ORT_BINDING" ]]; then say "plan: GPU onnxruntime binding       <- $ORT_BINDING (node_modules/onnxruntime-node/bin/napi-v6/linux/$(npm_arch))"; fi
  say "plan: /etc/cityedge/config.yaml     <- $CONFIG (root:cityedge 0640)"
  if [[ -n "$CERTS" ]]; then say "plan: /etc/cityedge/certs/         <- $CERTS (device.key root:cityedge 0640)"; fi
  if [[ -n "$ENV_FILE" ]]; then say "plan: /etc/cityedge/env            <- $ENV_FILE (root 0600)"; fi
  if [[ -n "$MODEL_KEY" ]]; then say "plan: /etc/cityedge/model-signing.pub.pem <- $MODEL_KEY"; fi
  say "plan: /etc/systemd/system/cityedge.service, enabled for multi-user.target"
  say "plan: user and group cityedge; /var/lib/cityedge (cityedge 0750)"
}

if [[ -n "$ROOTFS" ]]; then
  [[ -d "$ROOTFS" ]] || die "--rootfs \"$ROOTFS\" is not a directory"
  [[ "$(cd "$ROOTFS" && pwd)" != "/" ]] || die "--rootfs / would install over this machine; use --ssh localhost for that"
  arch="$(device_arch_rootfs "$ROOTFS")"
  [[ "$arch" == "$TARGET_ARCH" ]] || die "--rootfs \"$ROOTFS\" is a root filesystem for $arch, not $TARGET_ARCH (--arch)"
  if [[ $SYSTEM_NODE -eq 1 ]]; then check_system_node_rootfs "$ROOTFS"; elif [[ $DRY_RUN -eq 0 || -n "$NODE_SRC" ]]; then prepare_node; fi
  plan
  if [[ $DRY_RUN -eq 1 ]]; then say "dry run: nothing written to $ROOTFS"; exit 0; fi
  [[ $EUID -eq 0 ]] || die "installing into a rootfs sets owners: run as root (sudo)"
  ensure_user "$ROOTFS"
  install_tree "$ROOTFS"
  say "installed into $ROOTFS (cityedge uid $CE_UID, gid $CE_GID)"
  exit 0
fi

# Over SSH: stage the tree here (owned by root), stream it as a tarball, and let a small script
# on the device create the user, unpack, hand the files to the cityedge group and start it.
# shellcheck disable=SC2016 # expanded on the device, not here
REMOTE_SCRIPT='set -eu
id cityedge >/dev/null 2>&1 || useradd --system --user-group --home-dir /var/lib/cityedge --no-create-home --shell /usr/sbin/nologin cityedge
for g in video dialout; do getent group "$g" >/dev/null && usermod -aG "$g" cityedge; done
tar -xzf - -C / --no-same-owner --no-overwrite-dir
chgrp cityedge /etc/cityedge /etc/cityedge/config.yaml
if [ -d /etc/cityedge/certs ]; then chgrp cityedge /etc/cityedge/certs /etc/cityedge/certs/device.key; fi
install -d -m 0750 -o cityedge -g cityedge /var/lib/cityedge
systemctl daemon-reload
# The config as the daemon will read it (its user, its secrets), before the service is enabled.
if ! (set -a; [ -r /etc/cityedge/env ] && . /etc/cityedge/env; set +a; exec runuser -u cityedge -- /opt/cityedge/bin/cityedge check-config /etc/cityedge/config.yaml); then
  echo "cityedge-install: error: the config does not pass check-config on the device; the service was not enabled or restarted" >&2
  exit 78
fi
systemctl enable cityedge.service
systemctl restart cityedge.service
systemctl is-active cityedge.service'
if [[ $DRY_RUN -eq 0 ]]; then
  # What the device is: its architecture, and its node when it is to run on it.
  # shellcheck disable=SC2029 # the command is meant to be sent as it is
  facts="$(ssh "$SSH_HOST" 'uname -m; if command -v node >/dev/null 2>&1; then node --version; else echo none; fi')" ||
    die "cannot reach $SSH_HOST over ssh"
  arch="$(printf '%s\n' "$facts" | sed -n 1p)"
  [[ "$arch" == "$TARGET_ARCH" ]] || die "$SSH_HOST is $arch, not $TARGET_ARCH (--arch)"
  if [[ $SYSTEM_NODE -eq 1 ]]; then
    device_node="$(printf '%s\n' "$facts" | sed -n 2p)"
    [[ "$device_node" != none ]] || die "--system-node: $SSH_HOST has no node: give --node FILE or leave out --system-node to bundle one"
    node_version_ok "${device_node#v}" || die "--system-node: $SSH_HOST has Node ${device_node#v}, which does not satisfy the app's engines"
    NODE_FOUND_VERSION="${device_node#v} (the device's)"
  fi
fi
if [[ $SYSTEM_NODE -eq 0 && ( $DRY_RUN -eq 0 || -n "$NODE_SRC" ) ]]; then prepare_node; fi
plan
if [[ $DRY_RUN -eq 1 ]]; then
  say "dry run: would run on $SSH_HOST: ssh $SSH_HOST sudo sh -c '<script>' < tarball"
  printf '%s\n' "$REMOTE_SCRIPT"
  exit 0
fi
work_dir
STAGE="$WORK/stage"
mkdir -p "$STAGE/etc"
CE_UID=0
CE_GID=0
install_tree "$STAGE"
say "copying to $SSH_HOST"
# The script travels base64-encoded (no quoting to get wrong); the tarball on stdin.
SCRIPT_B64="$(printf '%s\n' "$REMOTE_SCRIPT" | base64 -w0)"
status=0
# shellcheck disable=SC2029 # SCRIPT_B64 is meant to expand here
tar -C "$STAGE" -czf - opt etc var | ssh "$SSH_HOST" "sudo sh -c \"\$(echo $SCRIPT_B64 | base64 -d)\"" || status=$?
if [[ $status -eq 78 ]]; then die "the config failed check-config on $SSH_HOST (above): files are installed, the service was not enabled or restarted"; fi
[[ $status -eq 0 ]] || die "the installation on $SSH_HOST failed (exit $status)"
say "installed on $SSH_HOST and started"
