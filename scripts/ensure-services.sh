#!/usr/bin/env bash
# Makes sure the local PostgreSQL and Redis that the cluster tests use are up.
# Starts them when they are installed but down. Under CI=true a service that
# cannot be had is an error (the cluster tests must not be skipped there);
# elsewhere it is only reported, and those tests skip with a clear message.
set -u

pg_up() { python3 - <<'PY'
import socket, sys
s = socket.socket(); s.settimeout(1)
sys.exit(0 if s.connect_ex(("127.0.0.1", 5432)) == 0 else 1)
PY
}
redis_up() { python3 - <<'PY'
import socket, sys
s = socket.socket(); s.settimeout(1)
try:
    s.connect(("127.0.0.1", 6379)); s.sendall(b"PING\r\n")
    sys.exit(0 if s.recv(16).startswith(b"+PONG") else 1)
except OSError:
    sys.exit(1)
PY
}

failed=0
if ! pg_up; then
  echo "PostgreSQL is down; starting it"
  if [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
  for _ in $(seq 1 30); do pg_up && break; sleep 0.5; done
  pg_up || { echo "PostgreSQL is not available on 127.0.0.1:5432"; failed=1; }
fi
if ! redis_up; then
  echo "Redis is down; starting it"
  if command -v redis-server >/dev/null; then
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
      --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  fi
  for _ in $(seq 1 30); do redis_up && break; sleep 0.5; done
  redis_up || { echo "Redis is not available on 127.0.0.1:6379"; failed=1; }
fi
if [ "$failed" = 1 ] && [ "${CI:-}" = "true" ]; then
  echo "CI=true and a required service is missing: failing"
  exit 1
fi
exit 0
