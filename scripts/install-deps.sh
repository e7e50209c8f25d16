#!/usr/bin/env bash
# Installs the Debian packages ledgerd needs to build, run and test.
# Safe to run again; uses sudo when not root.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

# ledgerd runs its own private clusters: keep the postgresql package from
# creating and starting a system-wide one on install.
$SUDO mkdir -p /etc/postgresql-common
if [ ! -f /etc/postgresql-common/createcluster.conf ]; then
    echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.conf >/dev/null
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-deps: installing Debian packages (quietly; this may take a few minutes)"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    gcc make libc6-dev pkg-config \
    libpq-dev libmicrohttpd-dev libjansson-dev libcmocka-dev libgmp-dev libcurl4-openssl-dev \
    libhttp-parser-dev \
    postgresql postgresql-client acl \
    python3 curl ca-certificates >/dev/null
echo "install-deps: build, run and test dependencies are installed"
