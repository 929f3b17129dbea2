#!/usr/bin/env bash
# Installs the native TensorFlow backend (backend 'tensorflow', see core/tensor/native.ts) into
# "$MERGEFLOW_NATIVE" (default: <repo>/.mergeflow/native), outside node_modules so that `npm ci` keeps it:
#   tf/    the TensorFlow wheel from PyPI, pip-installed with --target, pinned by version and hash
#          (requirements-cpu.txt; requirements-gpu.txt adds CUDA 12 and cuDNN for NVIDIA GPUs)
#   node/  @tensorflow/tfjs-node 4.22.0 (package-lock.json, no install scripts: they would download
#          libtensorflow 2.9), its binding built from source against tf/, sharing this checkout's
#          @tensorflow/tfjs-core and tfjs-backend-cpu through symlinks
# MERGEFLOW_TF picks the wheel: auto (default: gpu where `nvidia-smi` works, else cpu), gpu, cpu or none.
# Idempotent: an install of the same kind and versions that passes the probe is left alone (about 2 s).
# Needs Linux x86-64, python3 with pip, a C++ compiler and make; about 1.3 GB on disk (cpu) or 6 GB (gpu).
set -euo pipefail

TF_VERSION="2.21.0"
TFJS_NODE_VERSION="4.22.0"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
NATIVE="${MERGEFLOW_NATIVE:-$REPO_ROOT/.mergeflow/native}"
PKG="$NATIVE/node/node_modules/@tensorflow/tfjs-node"
LOG="$NATIVE/build.log"

say() { printf 'install-native: %s\n' "$*"; }
die() { printf 'install-native: error: %s\n' "$*" >&2; exit 1; }

want="$(printf '%s' "${MERGEFLOW_TF:-auto}" | tr '[:upper:]' '[:lower:]')"
case "$want" in
  none)
    say "MERGEFLOW_TF=none: not installing the native TensorFlow backend"
    [ -f "$NATIVE/installed.json" ] && say "  (the one in $NATIVE stays in use; delete that folder to drop it)"
    exit 0
    ;;
  auto)
    if command -v nvidia-smi >/dev/null 2>&1 && timeout 30 nvidia-smi -L >/dev/null 2>&1; then variant=gpu; else variant=cpu; fi
    ;;
  gpu | cpu) variant="$want" ;;
  *) die "MERGEFLOW_TF='${MERGEFLOW_TF}' is not one of auto, gpu, cpu, none" ;;
esac

[ "$(uname -sm)" = "Linux x86_64" ] ||
  die "the TensorFlow wheel used here is for Linux x86-64 only (this is $(uname -sm)); set MERGEFLOW_TF=none"
[ -d "$REPO_ROOT/node_modules/@tensorflow/tfjs-core" ] || die "run 'npm ci' in $REPO_ROOT first"
python3 -m pip --version >/dev/null 2>&1 || die "python3 with pip is needed to fetch the TensorFlow wheel"
command -v make >/dev/null 2>&1 || die "'make' not found: install build tools (Debian: apt-get install build-essential)"
command -v "${CXX:-g++}" >/dev/null 2>&1 || die "no C++ compiler (${CXX:-g++}): install build tools (Debian: apt-get install build-essential)"

stamp="{\"variant\":\"$variant\",\"tensorflow\":\"$TF_VERSION\",\"tfjsNode\":\"$TFJS_NODE_VERSION\"}"

probe() { node "$HERE/probe.js" "$REPO_ROOT" "$PKG" 2>>"$LOG"; }

if [ "$(cat "$NATIVE/installed.json" 2>/dev/null)" = "$stamp" ] && device="$(probe)"; then
  say "TensorFlow $TF_VERSION ($variant wheel) already installed in $NATIVE; runs on: $device"
  exit 0
fi

mkdir -p "$NATIVE"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$NATIVE/.install.lock"
  flock -n 9 || { say "another install into $NATIVE is running; waiting for it"; flock 9; }
fi
rm -f "$NATIVE/installed.json"
: >"$LOG"
start="$(date +%s)"

# 1. The wheel (skipped when the same one is already there). The Python tag only picks the file: the
#    binding links the shared libraries, which do not need Python.
if [ "$(cat "$NATIVE/tf/.wheel" 2>/dev/null)" != "$variant-$TF_VERSION" ]; then
  say "installing the TensorFlow $TF_VERSION $variant wheel into $NATIVE/tf (pip, pinned hashes)"
  rm -rf "$NATIVE/tf"
  python3 -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes --only-binary=:all: \
    --python-version 3.11 --implementation cp --abi cp311 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_12_x86_64 \
    --platform manylinux2010_x86_64 --target "$NATIVE/tf" -r "$HERE/requirements-$variant.txt" >>"$LOG" 2>&1 ||
    { tail -n 20 "$LOG" >&2; die "pip could not install the $variant wheel (log: $LOG)"; }
  echo "$variant-$TF_VERSION" >"$NATIVE/tf/.wheel"
fi
TF_LIB="$NATIVE/tf/tensorflow"
[ -f "$TF_LIB/libtensorflow_cc.so.2" ] || die "$TF_LIB/libtensorflow_cc.so.2 is missing; delete $NATIVE and rerun"

# 2. tfjs-node and its JavaScript dependencies, without install scripts.
say "installing @tensorflow/tfjs-node $TFJS_NODE_VERSION into $NATIVE/node (npm ci --ignore-scripts)"
rm -rf "$NATIVE/node"
mkdir -p "$NATIVE/node"
cp "$HERE/package.json" "$HERE/package-lock.json" "$NATIVE/node/"
(cd "$NATIVE/node" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >>"$LOG" 2>&1) ||
  { tail -n 20 "$LOG" >&2; die "npm could not install @tensorflow/tfjs-node (log: $LOG)"; }
# One @tensorflow/tfjs-core in the process: tfjs-node must register its backend (and the union package its
# kernels) with the copy mergeflow uses, so this tree's copies become links to the checkout's.
for p in tfjs-core tfjs-backend-cpu; do
  ours="$REPO_ROOT/node_modules/@tensorflow/$p"
  v="$(node -p "require('$ours/package.json').version")"
  [ "$v" = "$TFJS_NODE_VERSION" ] || die "@tensorflow/$p is $v in $REPO_ROOT/node_modules, tfjs-node needs $TFJS_NODE_VERSION"
  rm -rf "$NATIVE/node/node_modules/@tensorflow/$p"
  ln -s "$ours" "$NATIVE/node/node_modules/@tensorflow/$p"
done
nested="$(find "$NATIVE/node/node_modules" -path '*/node_modules/@tensorflow/tfjs-core' -not -path "$NATIVE/node/node_modules/@tensorflow/tfjs-core")"
[ -z "$nested" ] || die "a second @tensorflow/tfjs-core was installed at $nested"

# 3. The binding, from source: headers and libraries from the wheel, an rpath to the wheel's folder.
mkdir -p "$PKG/deps/lib"
ln -sfn "$TF_LIB/include" "$PKG/deps/include"
ln -sf "$TF_LIB/libtensorflow_cc.so.2" "$PKG/deps/lib/libtensorflow.so"
ln -sf "$TF_LIB/libtensorflow_framework.so.2" "$PKG/deps/lib/libtensorflow_framework.so"
node_gyp="${npm_config_node_gyp:-}"
[ -f "$node_gyp" ] || node_gyp="$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js"
[ -f "$node_gyp" ] || die "node-gyp not found (it ships with npm); run this through 'npm run setup'"
node_dir="$(node -p "require('path').resolve(process.execPath, '..', '..')")"
gyp_args=(install --build-from-source)
# Node's own headers, so that node-gyp needs no download.
[ -f "$node_dir/include/node/node_api.h" ] && gyp_args+=("--nodedir=$node_dir")
say "building the tfjs-node binding against TensorFlow $TF_VERSION (about 20 s)"
(cd "$PKG" && npm_config_node_gyp="$node_gyp" LDFLAGS="-Wl,-rpath,$TF_LIB" JOBS="$(nproc 2>/dev/null || echo 2)" \
  node "$NATIVE/node/node_modules/@mapbox/node-pre-gyp/bin/node-pre-gyp" "${gyp_args[@]}" >>"$LOG" 2>&1) ||
  { tail -n 20 "$LOG" >&2; die "building the tfjs-node binding failed (log: $LOG)"; }

# 4. The probe: load it, run a product, ask the binding which device it uses.
device="$(probe)" || { tail -n 20 "$LOG" >&2; die "the built binding does not load (log: $LOG)"; }
if [ "$variant" = gpu ] && ! printf '%s' "$device" | grep -q '"gpu"'; then
  say "warning: the GPU wheel is installed but TensorFlow found no usable GPU, so it runs on the CPU;"
  say "  see $LOG and infra/deploy/README.md (driver >= 555, nvidia-smi)"
fi
printf '%s' "$stamp" >"$NATIVE/installed.json"
say "done in $(($(date +%s) - start)) s: TensorFlow $TF_VERSION ($variant wheel) in $NATIVE; runs on: $device"
