#!/bin/sh
# Install the Debian packages the test suite needs, only those missing, in one apt run:
#   chromium    the dashboard's browser tests drive /usr/bin/chromium (never a downloaded browser);
#   postgresql  the team-MLflow test starts its own throwaway cluster with initdb/pg_ctl
#               (the package's own cluster is not used).
set -eu
missing=""
[ -x /usr/bin/chromium ] || missing="$missing chromium"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$missing postgresql"
if [ -z "$missing" ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086  # the package list is meant to split into words
$SUDO apt-get install -y -qq $missing >/dev/null
echo "installed:$missing"
