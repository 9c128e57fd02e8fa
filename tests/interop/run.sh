#!/usr/bin/env bash
# Runs the exchangelib interoperability check against `ews-presence simulate` over
# HTTPS, twice: with Basic authentication, and with NTLM and Extended Protection
# required; then Microsoft's Graph SDK for Python (msgraph-sdk, signing in with
# azure-identity) against `simulate --graph`. Installs the pinned packages into a virtualenv
# under target/ (reused when present), makes a throwaway CA and server certificate with
# openssl, starts the simulator on a free loopback port, runs the check, stops it.
set -euo pipefail
cd "$(dirname "$0")/../.."

EXCHANGELIB_VERSION=5.6.0
MSGRAPH_SDK_VERSION=1.65.0
AZURE_IDENTITY_VERSION=1.27.0
venv=target/interop-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "
import sys, exchangelib
from importlib.metadata import version
sys.exit(exchangelib.__version__ != '$EXCHANGELIB_VERSION' or version('msgraph-sdk') != '$MSGRAPH_SDK_VERSION' or version('azure-identity') != '$AZURE_IDENTITY_VERSION')" 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "exchangelib==$EXCHANGELIB_VERSION" \
    "msgraph-sdk==$MSGRAPH_SDK_VERSION" "azure-identity==$AZURE_IDENTITY_VERSION"
fi

work=$(mktemp -d)
sim_pid=""
cleanup() {
  if [ -n "$sim_pid" ]; then kill "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# A CA and a certificate for 127.0.0.1 signed by it, as an enterprise CA would issue.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=ews-presence interop CA" -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -subj "/CN=127.0.0.1" -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' > "$work/ext.cnf"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
  -days 2 -extfile "$work/ext.cnf" -out "$work/server.pem" 2>/dev/null
echo "interop-$RANDOM-$RANDOM" > "$work/password"

cargo build --quiet --bin ews-presence
# Where cargo put it (CARGO_TARGET_DIR when set, as a shared build cache does).
binary="${CARGO_TARGET_DIR:-target}/debug/ews-presence"

# start_sim ARGS...: starts the simulator over HTTPS on a free port with ARGS, waits
# until it has said everything it says at start, and sets sim_pid and base.
start_sim() {
  "$binary" simulate --listen 127.0.0.1:0 \
    --tls-cert "$work/server.pem" --tls-key "$work/server.key" "$@" > "$work/sim.out" 2>&1 &
  sim_pid=$!
  for _ in $(seq 1 100); do
    grep -q "listening on" "$work/sim.out" && break
    kill -0 "$sim_pid" 2>/dev/null || { cat "$work/sim.out"; exit 1; }
    sleep 0.1
  done
  base=$(grep -o "listening on https://[0-9.:]*" "$work/sim.out" | head -n 1 | sed 's/listening on //')
  [ -n "$base" ] || { echo "the simulator did not report its address"; cat "$work/sim.out"; exit 1; }
}

# run_check AUTH EXTENDED_PROTECTION
run_check() {
  start_sim --mailboxes 200 --heartbeat-ms 500 --minute-ms 1500 --backends 4 \
    --account svc@example.test --auth "$1" --password-file "$work/password" \
    --extended-protection "$2"
  echo "simulator at $base (auth $1, extended protection $2)"
  REQUESTS_CA_BUNDLE="$work/ca.pem" timeout 120 "$venv/bin/python" tests/interop/exchangelib_check.py \
    "$base" "$work/password" "$work/ca.pem" "$1"
  if [ "$1" = ntlm ]; then
    REQUESTS_CA_BUNDLE="$work/ca.pem" timeout 120 "$venv/bin/python" tests/interop/autodiscover_check.py \
      "$base" "$work/password"
  fi
  kill "$sim_pid" 2>/dev/null || true
  wait "$sim_pid" 2>/dev/null || true
  sim_pid=""
}

run_check basic none
run_check ntlm require

# Microsoft's Graph SDK against the simulator's Graph side, over HTTPS.
echo "graph-interop-$RANDOM-$RANDOM" > "$work/graph-secret"
start_sim --mailboxes 20 --graph --graph-tenant interop.example.test \
  --graph-client-id 11111111-2222-3333-4444-555555555555 --graph-secret-file "$work/graph-secret"
echo "simulator with Graph at $base"
timeout 120 "$venv/bin/python" tests/interop/msgraph_check.py \
  "$base" interop.example.test 11111111-2222-3333-4444-555555555555 "$work/graph-secret" "$work/ca.pem"
