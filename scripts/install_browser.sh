#!/bin/sh
# Install Debian's Chromium for the dashboard's browser tests, only if it is missing.
# Never downloads a Playwright browser: the tests drive /usr/bin/chromium.
set -eu
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium >/dev/null
echo "installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
