#!/usr/bin/env bash
# Installs the local-stack binaries (Temporal CLI with its dev server, MinIO) into
# "$MERGEFLOW_HOME/bin" (default: <repo>/.mergeflow/bin; MERGEFLOW_BIN overrides the folder).
# Idempotent: a binary that is present and answers --version is left alone.
# Builds from source with `go install` (Go >= 1.25 and the Go module proxy are needed; the first
# build on a fresh machine takes several minutes, later ones reuse Go's module and build caches).
set -euo pipefail

TEMPORAL_VERSION="1.5.1"
TEMPORAL_PKG="github.com/temporalio/cli/cmd/temporal@v${TEMPORAL_VERSION}"
TEMPORAL_LDFLAGS="-X github.com/temporalio/cli/temporalcli.Version=${TEMPORAL_VERSION}"
MINIO_PKG="github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c"
GO_MIN_MINOR=25 # Go 1.25: temporal cli v1.5.1 says `go 1.25.0`; minio says `go 1.24.0`

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MERGEFLOW_HOME="${MERGEFLOW_HOME:-$REPO_ROOT/.mergeflow}"
BIN_DIR="${MERGEFLOW_BIN:-$MERGEFLOW_HOME/bin}"
LOG_DIR="$MERGEFLOW_HOME/logs"

say() { printf 'install: %s\n' "$*"; }
die() { printf 'install: error: %s\n' "$*" >&2; exit 1; }

# A binary counts as installed when it runs and answers --version.
answers_version() {
  [ -x "$1" ] || return 1
  if command -v timeout >/dev/null 2>&1; then
    timeout 20 "$1" --version >/dev/null 2>&1
  else
    "$1" --version >/dev/null 2>&1
  fi
}

need_temporal=1
need_minio=1
answers_version "$BIN_DIR/temporal" && need_temporal=0
answers_version "$BIN_DIR/minio" && need_minio=0
if [ "$need_temporal" = 0 ] && [ "$need_minio" = 0 ]; then
  say "temporal and minio already installed in $BIN_DIR"
  exit 0
fi

command -v go >/dev/null 2>&1 ||
  die "'go' not found on PATH: install Go >= 1.${GO_MIN_MINOR} (https://go.dev/dl/), then rerun infra/install.sh"

go_version="$(go env GOVERSION 2>/dev/null || true)" # e.g. go1.26.8
go_minor="$(printf '%s' "$go_version" | sed -n 's/^go1\.\([0-9][0-9]*\).*/\1/p')"
if [ -z "$go_minor" ] || [ "$go_minor" -lt "$GO_MIN_MINOR" ]; then
  die "found ${go_version:-an unknown Go version}; install Go >= 1.${GO_MIN_MINOR} (https://go.dev/dl/), then rerun infra/install.sh"
fi
# The local toolchain is new enough for both modules (minio's `toolchain go1.24.8` line is older),
# so never let `go` try to download another toolchain (that needs the internet).
export GOTOOLCHAIN=local

mkdir -p "$BIN_DIR" "$LOG_DIR"

# One install at a time per bin folder (two `stack up` calls may race).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$BIN_DIR/.install.lock"
  if ! flock -n 9; then
    say "another install into $BIN_DIR is running; waiting for it"
    flock 9
  fi
  # The other install may have finished the job.
  answers_version "$BIN_DIR/temporal" && need_temporal=0
  answers_version "$BIN_DIR/minio" && need_minio=0
fi

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
  say "  $name: done in $((now - start)) s -> $BIN_DIR/$name ($("$BIN_DIR/$name" --version 2>&1 | head -n 1))"
}

if [ "$need_temporal" = 1 ]; then
  go_install temporal "$LOG_DIR/install-temporal.log" -- -ldflags "$TEMPORAL_LDFLAGS" "$TEMPORAL_PKG"
else
  say "temporal already installed: $BIN_DIR/temporal"
fi
if [ "$need_minio" = 1 ]; then
  go_install minio "$LOG_DIR/install-minio.log" -- "$MINIO_PKG"
else
  say "minio already installed: $BIN_DIR/minio"
fi
say "done: binaries in $BIN_DIR"
