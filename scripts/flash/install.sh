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
  --ssh HOST        install on a running device over SSH (needs sudo there); starts the service
  --config FILE     the device's config (installed as /etc/cityedge/config.yaml)
  --app DIR         the built app: dist/, node_modules/ (for aarch64), package.json
                    (default: this repository)
  --certs DIR       ca.pem, device.pem and device.key for MQTT over TLS (/etc/cityedge/certs)
  --model-key FILE  the Ed25519 public key that signs model updates (/etc/cityedge/model-signing.pub.pem)
  --env-file FILE   secrets for \${env:…} references (/etc/cityedge/env, mode 0600)
  --node FILE       a node 20 binary for aarch64 to bundle (/opt/cityedge/bin/node)
  --dry-run         print what would be done; change nothing
USAGE
}

ROOTFS="" SSH_HOST="" CONFIG="" CERTS="" ENV_FILE="" MODEL_KEY="" NODE_BIN="" DRY_RUN=0
APP="$(cd "$HERE/../.." && pwd)"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rootfs | --ssh | --config | --app | --certs | --env-file | --model-key | --node)
      [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value"
      case "$1" in
        --rootfs) ROOTFS="$2" ;;
        --ssh) SSH_HOST="$2" ;;
        *) layout_option "$1" "$2" ;;
      esac
      shift 2
      ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument \"$1\"" ;;
  esac
done

if [[ -n "$ROOTFS" && -n "$SSH_HOST" ]]; then die "give --rootfs or --ssh, not both"; fi
if [[ -z "$ROOTFS" && -z "$SSH_HOST" ]]; then usage >&2; die "give --rootfs DIR or --ssh HOST"; fi
check_inputs

plan() {
  say "plan: /opt/cityedge/app             <- $APP (dist, node_modules, package.json, models, config)"
  say "plan: /opt/cityedge/bin/cityedge    launcher${NODE_BIN:+ (bundled node from $NODE_BIN)}"
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
systemctl enable cityedge.service
systemctl restart cityedge.service
systemctl is-active cityedge.service'
plan
if [[ $DRY_RUN -eq 1 ]]; then
  say "dry run: would run on $SSH_HOST: ssh $SSH_HOST sudo sh -c '<script>' < tarball"
  printf '%s\n' "$REMOTE_SCRIPT"
  exit 0
fi
STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/etc"
CE_UID=0
CE_GID=0
install_tree "$STAGE"
say "copying to $SSH_HOST"
# The script travels base64-encoded (no quoting to get wrong); the tarball on stdin.
SCRIPT_B64="$(printf '%s\n' "$REMOTE_SCRIPT" | base64 -w0)"
# shellcheck disable=SC2029 # SCRIPT_B64 is meant to expand here
tar -C "$STAGE" -czf - opt etc var | ssh "$SSH_HOST" "sudo sh -c \"\$(echo $SCRIPT_B64 | base64 -d)\""
say "installed on $SSH_HOST and started"
