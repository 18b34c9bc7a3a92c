#!/usr/bin/env bash
# Builds the fuzz targets with libFuzzer's coverage instrumentation and
# overflow checks on the stable toolchain (cargo-fuzz's flags without the
# address sanitizer, which needs nightly), seeds their corpora and runs each
# for SECONDS (default 20). A crash, a panic, an overflow or a timeout exits
# non-zero and leaves the input under fuzz/artifacts/TARGET/.
#
#   fuzz/run.sh 20            # CI
#   fuzz/run.sh 600 decode    # one target, longer
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-20}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(containers decode tile_pack texture_plan basis)
host=$(rustc -vV | sed -n 's/^host: //p')
# --target keeps these flags off build scripts.
RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing" \
    cargo build --release --target "$host" --target-dir target/stable
./seed.sh
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    echo "fuzz: $t for ${seconds}s"
    rc=0
    "target/stable/$host/release/$t" -max_total_time="$seconds" -timeout=10 \
        -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="artifacts/$t/" "corpus/$t" \
        > "artifacts/$t/log" 2>&1 || rc=$?
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb|SUMMARY|thread|ERROR)|panicked' \
        "artifacts/$t/log" || true
    if [ "$rc" -ne 0 ]; then
        tail -40 "artifacts/$t/log"
        echo "fuzz: $t found a failure (exit $rc): the input is under fuzz/artifacts/$t/"
        exit 1
    fi
done
