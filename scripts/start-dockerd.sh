#!/usr/bin/env bash
# Starts the Docker Engine the way the tests need it on these VMs (no iptables, no bridge, vfs
# storage: see docs ENVIRONMENT.md) and waits until the API answers. No-op when a daemon already
# answers on the socket, whoever started it.
set -euo pipefail
SOCK=/var/run/docker.sock
LOG=${DOCKERD_LOG:-/var/log/slipway-dockerd.log}
DOCKER=/usr/bin/docker   # the Debian client; a newer one elsewhere on PATH may lack buildx

answers() { [ -S "$SOCK" ] && timeout 5 "$DOCKER" -H "unix://$SOCK" version --format '{{.Server.Version}}' >/dev/null 2>&1; }

if answers; then
  echo "start-dockerd: Docker Engine already answering on $SOCK"
  exit 0
fi
if [ ! -x /usr/sbin/dockerd ]; then
  echo "start-dockerd: /usr/sbin/dockerd missing (apt-get install docker.io)" >&2
  exit 1
fi

# A dockerd that is not a zombie: one killed with -9 lingers a moment (or as a zombie of a parent
# that does not reap it), and waiting 60 s on it to answer failed where starting a new one works.
live_dockerd() { ps -C dockerd -o stat= 2>/dev/null | grep -qv '^Z'; }

# What is left of a daemon on its way out, zombies included: its containerd removes its socket as
# it goes, from under the containerd of a daemon started meanwhile ("timeout waiting for
# containerd to start"). Reaped within a second or two here; a zombie nobody reaps stays, so the
# wait is bounded.
going() { ps -eo args= 2>/dev/null | grep -qE '^(\[dockerd\]|\[containerd\]|/usr/sbin/dockerd|containerd --config /var/run/docker/containerd)'; }

start() {
  for _ in $(seq 1 20); do going || break; sleep 0.5; done
  # A daemon killed uncleanly leaves its pid file behind and refuses to start. Its pid may still
  # be there as a zombie, which kill -0 counts as alive.
  if [ -f /var/run/docker.pid ] && ! ps -o stat= -p "$(cat /var/run/docker.pid)" 2>/dev/null | grep -qv '^Z'; then rm -f /var/run/docker.pid; fi
  echo "start-dockerd: starting dockerd (log: $LOG)"
  # setsid + nohup: the daemon must outlive the CI shell that started it.
  setsid nohup /usr/sbin/dockerd --iptables=false --ip6tables=false --bridge=none --storage-driver=vfs \
    >>"$LOG" 2>&1 </dev/null &
}

if live_dockerd; then
  echo "start-dockerd: a dockerd process exists but does not answer yet; waiting for it to answer or go"
  for _ in $(seq 1 120); do
    if answers; then echo "start-dockerd: ready"; exit 0; fi
    live_dockerd || break
    sleep 0.5
  done
  if live_dockerd; then
    echo "start-dockerd: the running dockerd did not answer within 60 s; last log lines:" >&2
    tail -20 "$LOG" >&2 || true
    exit 1
  fi
  echo "start-dockerd: that dockerd has gone"
fi
start

for _ in $(seq 1 120); do
  if answers; then echo "start-dockerd: ready"; exit 0; fi
  sleep 0.5
done
echo "start-dockerd: dockerd did not answer within 60 s; last log lines:" >&2
tail -20 "$LOG" >&2 || true
exit 1
