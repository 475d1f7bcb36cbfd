#!/bin/sh
# Install Debian's PostgreSQL server for the team-MLflow integration test, only if it is missing.
# The test starts its own throwaway cluster with initdb/pg_ctl; the package's cluster is not used.
set -eu
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq postgresql >/dev/null
echo "installed $(ls -d /usr/lib/postgresql/*/bin | tail -n 1)"
