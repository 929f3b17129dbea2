#!/usr/bin/env bash
# Headless Chromium for the Web UI test (test/web-ui.test.ts drives /usr/bin/chromium with playwright-core).
# Installs Debian's chromium package when it is missing and apt-get can run as root; otherwise says how.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "infra/chromium.sh: installing Debian's chromium (for the Web UI test)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "infra/chromium.sh: /usr/bin/chromium is missing; install your distribution's chromium package (the Web UI test needs it)" >&2
fi
