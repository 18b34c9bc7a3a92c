#!/usr/bin/env bash
# Builds the fuzz targets with libFuzzer's coverage instrumentation and
# overflow checks on the stable toolchain (cargo-fuzz's flags without the
# address sanitizer, which needs nightly), seeds their corpora and runs each.
# A crash, a panic, an overflow or a timeout exits non-zero and leaves the
# input under fuzz/artifacts/TARGET/.
#
#   fuzz/run.sh --ci          # CI: seed 1 and a fixed number of runs per
#                             # target, from fresh seeds: the same result
#                             # on every run of the same code
#   fuzz/run.sh 600 decode    # explore: one target for 600 s, random seed
set -euo pipefail
cd "$(dirname "$0")"
ci=0
if [ "${1:-}" = --ci ]; then
    ci=1
    shift
    # Fresh seeds only: what earlier runs added to the corpora stays out.
    rm -rf corpus
else
    seconds="${1:-20}"
    shift || true
fi
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
    if [ "$ci" = 1 ]; then
        # About 20 s each on a 2-core machine.
        case "$t" in
            containers) runs=2500 ;; decode) runs=1000000 ;; tile_pack) runs=1500 ;;
            texture_plan) runs=8000000 ;; basis) runs=2500 ;; *) runs=2000 ;;
        esac
        limit=(-seed=1 -runs="$runs")
        echo "fuzz: $t, $runs runs from seed 1"
    else
        limit=(-max_total_time="$seconds")
        echo "fuzz: $t for ${seconds}s"
    fi
    rc=0
    "target/stable/$host/release/$t" "${limit[@]}" -timeout=10 \
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
