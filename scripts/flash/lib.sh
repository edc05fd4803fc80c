# shellcheck shell=bash
# Shared by install.sh and flash-jetson.sh: checks the inputs and lays cityedge out in a root
# filesystem directory (a mounted device, L4T's Linux_for_Tegra/rootfs, or a staging dir).

CE_USER=cityedge
CE_HOME=/var/lib/cityedge
CE_SHELL=/usr/sbin/nologin
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
UNIT_FILE="$HERE/cityedge.service"
LAUNCHER="$HERE/launcher.sh"

die() {
  printf '%s: error: %s\n' "${PROG:-cityedge-install}" "$*" >&2
  exit 2
}

say() {
  printf '%s: %s\n' "${PROG:-cityedge-install}" "$*"
}

# layout_option FLAG VALUE: sets the layout input that FLAG names (--config, --app, --certs,
# --env-file, --model-key, --node); returns 1 when FLAG is not one of them.
layout_option() {
  case "$1" in
    --config) CONFIG="$2" ;;
    --app) APP="$2" ;;
    --certs) CERTS="$2" ;;
    --env-file) ENV_FILE="$2" ;;
    --model-key) MODEL_KEY="$2" ;;
    --node) NODE_BIN="$2" ;;
    *) return 1 ;;
  esac
}

# require_file WHAT PATH: the input must be a readable regular file.
require_file() {
  [[ -n "$2" ]] || die "$1 is required"
  [[ -f "$2" && -r "$2" ]] || die "$1 \"$2\" is not a readable file"
}

# check_inputs: every input the layout needs, checked before anything is written.
check_inputs() {
  require_file "--config" "$CONFIG"
  [[ -n "$APP" ]] || die "--app is required"
  [[ -d "$APP" ]] || die "--app \"$APP\" is not a directory"
  [[ -f "$APP/dist/runtime/cli.js" ]] || die "--app \"$APP\" has no dist/runtime/cli.js (run npm ci && npm run build there first)"
  [[ -f "$APP/package.json" ]] || die "--app \"$APP\" has no package.json"
  [[ -d "$APP/node_modules" ]] || die "--app \"$APP\" has no node_modules (run npm ci --omit=dev there, on or for aarch64)"
  if [[ -n "$CERTS" ]]; then
    [[ -d "$CERTS" ]] || die "--certs \"$CERTS\" is not a directory"
    local f
    for f in ca.pem device.pem device.key; do
      require_file "--certs $f" "$CERTS/$f"
    done
  fi
  if [[ -n "$ENV_FILE" ]]; then require_file "--env-file" "$ENV_FILE"; fi
  if [[ -n "$MODEL_KEY" ]]; then
    require_file "--model-key" "$MODEL_KEY"
    grep -q -- "-----BEGIN PUBLIC KEY-----" "$MODEL_KEY" || die "--model-key \"$MODEL_KEY\" is not a PEM public key (openssl pkey -pubout)"
  fi
  if [[ -n "$NODE_BIN" ]]; then
    require_file "--node" "$NODE_BIN"
    [[ -x "$NODE_BIN" ]] || die "--node \"$NODE_BIN\" is not executable"
  fi
  require_file "the unit file" "$UNIT_FILE"
  require_file "the launcher" "$LAUNCHER"
}

# first_free_id FILE: the lowest system id (100..999) not used in the passwd/group FILE.
first_free_id() {
  local id
  for ((id = 100; id < 1000; id++)); do
    if ! cut -d: -f3 "$1" | grep -qx "$id"; then
      echo "$id"
      return 0
    fi
  done
  die "no free system id in $1"
}

# ensure_user ROOTFS: creates the cityedge system user and group in ROOTFS/etc (idempotent)
# and sets CE_UID and CE_GID. Edits the files directly, so it works on a foreign-architecture
# rootfs where nothing inside can run.
ensure_user() {
  local root="$1" etc="$1/etc"
  [[ -f "$etc/passwd" && -f "$etc/group" ]] || die "rootfs \"$root\" has no etc/passwd and etc/group (is it a root filesystem?)"
  if grep -q "^$CE_USER:" "$etc/group"; then
    CE_GID="$(grep "^$CE_USER:" "$etc/group" | cut -d: -f3)"
  else
    CE_GID="$(first_free_id "$etc/group")"
    printf '%s:x:%s:\n' "$CE_USER" "$CE_GID" >>"$etc/group"
    if [[ -f "$etc/gshadow" ]]; then printf '%s:!::\n' "$CE_USER" >>"$etc/gshadow"; fi
  fi
  if grep -q "^$CE_USER:" "$etc/passwd"; then
    CE_UID="$(grep "^$CE_USER:" "$etc/passwd" | cut -d: -f3)"
  else
    CE_UID="$(first_free_id "$etc/passwd")"
    printf '%s:x:%s:%s:cityedge daemon:%s:%s\n' "$CE_USER" "$CE_UID" "$CE_GID" "$CE_HOME" "$CE_SHELL" >>"$etc/passwd"
    if [[ -f "$etc/shadow" ]]; then printf '%s:!:%s::::::\n' "$CE_USER" "$(($(date +%s) / 86400))" >>"$etc/shadow"; fi
  fi
  # Device access for the GPU, V4L2 cameras and serial meters, where the groups exist.
  local g tmp
  for g in video dialout; do
    tmp="$(mktemp)"
    awk -F: -v OFS=: -v g="$g" -v u="$CE_USER" '
      $1 == g { n = split($4, m, ","); found = 0; for (i = 1; i <= n; i++) if (m[i] == u) found = 1
                if (!found) $4 = ($4 == "" ? u : $4 "," u) }
      { print }' "$etc/group" >"$tmp"
    # cat, not mv: keep the file's inode, owner and mode.
    cat "$tmp" >"$etc/group"
    rm -f "$tmp"
  done
}

# install_tree ROOTFS: lays out the app, launcher, config, certificates, secrets, unit and data
# directory with their owners and modes. Needs CE_UID and CE_GID (ensure_user).
install_tree() {
  local root="$1"
  local opt="$root/opt/cityedge" etc="$root/etc/cityedge"
  install -d -m 0755 -o 0 -g 0 "$opt" "$opt/bin" "$root/etc/systemd/system/multi-user.target.wants"
  # The app is replaced whole: stale files of an older version never linger.
  rm -rf "$opt/app.new"
  install -d -m 0755 -o 0 -g 0 "$opt/app.new"
  cp -a "$APP/dist" "$APP/node_modules" "$APP/package.json" "$opt/app.new/"
  local d
  for d in models config docs README.md ARCHITECTURE.md; do
    if [[ -e "$APP/$d" ]]; then cp -a "$APP/$d" "$opt/app.new/"; fi
  done
  chown -R 0:0 "$opt/app.new"
  chmod -R u+rwX,go+rX,go-w "$opt/app.new"
  rm -rf "$opt/app.old"
  if [[ -d "$opt/app" ]]; then mv "$opt/app" "$opt/app.old"; fi
  mv "$opt/app.new" "$opt/app"
  rm -rf "$opt/app.old"

  if [[ -n "$NODE_BIN" ]]; then install -m 0755 -o 0 -g 0 "$NODE_BIN" "$opt/bin/node"; fi
  install -m 0755 -o 0 -g 0 "$LAUNCHER" "$opt/bin/cityedge"

  install -d -m 0750 -o 0 -g "$CE_GID" "$etc"
  install -m 0640 -o 0 -g "$CE_GID" "$CONFIG" "$etc/config.yaml"
  if [[ -n "$CERTS" ]]; then
    install -d -m 0750 -o 0 -g "$CE_GID" "$etc/certs"
    install -m 0644 -o 0 -g 0 "$CERTS/ca.pem" "$etc/certs/ca.pem"
    install -m 0644 -o 0 -g 0 "$CERTS/device.pem" "$etc/certs/device.pem"
    install -m 0640 -o 0 -g "$CE_GID" "$CERTS/device.key" "$etc/certs/device.key"
  fi
  # Read by systemd (as root) before it drops to the cityedge user: nobody else reads it.
  if [[ -n "$ENV_FILE" ]]; then install -m 0600 -o 0 -g 0 "$ENV_FILE" "$etc/env"; fi
  if [[ -n "$MODEL_KEY" ]]; then install -m 0644 -o 0 -g 0 "$MODEL_KEY" "$etc/model-signing.pub.pem"; fi

  install -m 0644 -o 0 -g 0 "$UNIT_FILE" "$root/etc/systemd/system/cityedge.service"
  ln -sfn ../cityedge.service "$root/etc/systemd/system/multi-user.target.wants/cityedge.service"
  install -d -m 0750 -o "$CE_UID" -g "$CE_GID" "$root$CE_HOME"
}
