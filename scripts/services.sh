# Sourced by test.sh and the bench scripts: a throw-away PostgreSQL and Redis on
# loopback, in a temporary directory, stopped by stop_services (trap it).
# PostgreSQL refuses to run as root, so its server runs as the `postgres` user.

PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

ensure_redis_server() {
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "== installing redis-server from Debian's packages"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  fi
}

ensure_chromium() {
  # Browser tests drive Debian's Chromium; Playwright's own download needs a
  # network this project does not have.
  if [ ! -x /usr/bin/chromium ]; then
    echo "== installing chromium from Debian's packages"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
}

ensure_postgres_server() {
  if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/postgres" ]; then
    echo "== installing postgresql from Debian's packages"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  fi
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin postgres
}

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_services() {
  ensure_postgres_server
  ensure_redis_server
  SERVICES_DIR=$(mktemp -d /tmp/scanner-services.XXXXXX)
  chmod 755 "$SERVICES_DIR"
  mkdir -p "$SERVICES_DIR/pg" "$SERVICES_DIR/redis"
  [ "$(id -u)" = 0 ] && chown postgres "$SERVICES_DIR/pg"
  PG_PORT=$(free_port)
  REDIS_PORT_NUMBER=$(free_port)
  as_pg "$PG_BIN/initdb" -D "$SERVICES_DIR/pg/data" -U postgres -A trust -E UTF8 >/dev/null
  # fsync off: a throw-away test cluster trades durability for speed.
  as_pg "$PG_BIN/pg_ctl" -D "$SERVICES_DIR/pg/data" -l "$SERVICES_DIR/pg/log" -w -t 60 start \
    -o "-h 127.0.0.1 -p $PG_PORT -k $SERVICES_DIR/pg -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" >/dev/null
  redis-server --port "$REDIS_PORT_NUMBER" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$SERVICES_DIR/redis" --daemonize yes --pidfile "$SERVICES_DIR/redis/pid" \
    --logfile "$SERVICES_DIR/redis/log" >/dev/null
  for _ in $(seq 50); do redis-cli -p "$REDIS_PORT_NUMBER" ping >/dev/null 2>&1 && break; sleep 0.1; done
  export DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/scanner"
  export REDIS_URL="redis://127.0.0.1:$REDIS_PORT_NUMBER/0"
  # For tests that stop and restart the servers themselves.
  export TEST_PG_CTL="$PG_BIN/pg_ctl" TEST_PG_DATA="$SERVICES_DIR/pg/data" TEST_PG_SOCKET_DIR="$SERVICES_DIR/pg"
  export TEST_PG_PORT="$PG_PORT" TEST_REDIS_PORT="$REDIS_PORT_NUMBER" TEST_SERVICES_DIR="$SERVICES_DIR"
  as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres scanner
  echo "== PostgreSQL on 127.0.0.1:$PG_PORT, Redis on 127.0.0.1:$REDIS_PORT_NUMBER ($SERVICES_DIR)"
}

stop_services() {
  [ -n "${SERVICES_DIR:-}" ] || return 0
  redis-cli -p "$REDIS_PORT_NUMBER" shutdown nosave >/dev/null 2>&1 || true
  if [ -f "$SERVICES_DIR/redis/pid" ]; then kill "$(cat "$SERVICES_DIR/redis/pid")" 2>/dev/null || true; fi
  as_pg "$PG_BIN/pg_ctl" -D "$SERVICES_DIR/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$SERVICES_DIR"
  SERVICES_DIR=""
}

ensure_venv() {
  # $1: the requirements file to install.
  if [ ! -x .venv/bin/python ]; then
    python3.11 -m venv .venv 2>/dev/null || python3 -m venv .venv
  fi
  local stamp=".venv/.installed-$(cat "$1" requirements.txt | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    .venv/bin/pip install -q --disable-pip-version-check -r "$1"
    touch "$stamp"
  fi
}
