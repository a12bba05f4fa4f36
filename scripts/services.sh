#!/usr/bin/env bash
# Makes sure the real services the integration tests use are up on loopback:
# Redis on 127.0.0.1:6379 and PostgreSQL on 127.0.0.1:5432 (trust auth,
# database `test`). Installs a missing server with apt-get, then starts it.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  for _ in $(seq 1 60); do
    port_open "$1" && return 0
    sleep 0.5
  done
  return 1
}

apt_updated=0
apt_install() {
  if [ "$(id -u)" != 0 ]; then
    echo "services: $* is missing and installing it needs root" >&2
    return 1
  fi
  if [ "$apt_updated" = 0 ]; then
    apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# --- Redis -------------------------------------------------------------------
if port_open 6379; then
  echo "services: redis is up on 127.0.0.1:6379"
else
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  wait_port 6379 || { echo "services: redis did not start" >&2; exit 1; }
  echo "services: started redis on 127.0.0.1:6379"
fi

# --- PostgreSQL --------------------------------------------------------------
fresh_pg=0
if ! port_open 5432; then
  if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    apt_install postgresql
    fresh_pg=1
  fi
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  if [ "$fresh_pg" = 1 ]; then
    # Trust auth on loopback, as the tests expect.
    hba="/etc/postgresql/$version/main/pg_hba.conf"
    sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
    sed -i -E 's/^(local\s+all\s+all\s+)\S+/\1trust/' "$hba"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  wait_port 5432 || { echo "services: postgresql did not start" >&2; exit 1; }
  echo "services: started postgresql $version on 127.0.0.1:5432"
else
  echo "services: postgresql is up on 127.0.0.1:5432"
fi
if command -v psql >/dev/null 2>&1; then
  if ! psql -h 127.0.0.1 -U postgres -d test -Atc 'select 1' >/dev/null 2>&1; then
    psql -h 127.0.0.1 -U postgres -d postgres -c 'create database test' >/dev/null 2>&1 ||
      su postgres -c "psql -d postgres -c 'create database test'" >/dev/null 2>&1 || true
  fi
  psql -h 127.0.0.1 -U postgres -d test -Atc 'select 1' >/dev/null ||
    { echo "services: cannot reach database test on 127.0.0.1:5432 as postgres" >&2; exit 1; }
fi

# --- libfaketime ---------------------------------------------------------------
# The store clock step tests (test/integration/store-clock-step.test.ts) run a
# Redis and a PostgreSQL server of their own under libfaketime.
if ! ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1; then
  apt_install faketime
  echo "services: installed libfaketime"
fi
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  apt_install postgresql
  echo "services: installed the PostgreSQL server binaries"
fi
