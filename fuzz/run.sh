#!/usr/bin/env bash
# Runs the decoder fuzz target on the stable toolchain (no sanitizer: `-s none`),
# seeded with every fixture. Usage: fuzz/run.sh [SECONDS] (default 600).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
mkdir -p fuzz/corpus/decode
# libFuzzer reads the input's first two bytes as settings: prefix each seed with two.
for f in fixtures/ews/*.xml fixtures/ews/bad/*.xml; do
  seed="fuzz/corpus/decode/seed-$(basename "$f")"
  [ -e "$seed" ] || { printf '\xff\x31'; cat "$f"; } > "$seed"
done
cargo fuzz run -s none decode fuzz/corpus/decode -- \
  -max_total_time="$seconds" -max_len=65536 -timeout=10 -print_final_stats=1
