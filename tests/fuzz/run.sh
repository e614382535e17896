#!/bin/sh
# run.sh DIR SECONDS TARGET... — runs each built libFuzzer target DIR/TARGET for SECONDS.
#
# First the target replays its regression inputs (tests/fuzz/regressions/TARGET/, one run
# each), then it fuzzes with DIR/corpus/TARGET (new inputs, kept between runs) seeded from
# tests/fuzz/corpus/TARGET (never written). Crashes are written as DIR/artifacts/TARGET/crash-*
# and reproduce with `DIR/TARGET FILE`. Exits 1 if any target failed.
set -u
dir=$1 secs=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
failed=""
for t in "$@"; do
    bin="$dir/$t"
    mkdir -p "$dir/corpus/$t" "$dir/artifacts/$t" "$dir/logs"
    log="$dir/logs/$t.log"
    regs=$(find "$here/regressions/$t" -type f 2>/dev/null | sort)
    if [ -n "$regs" ]; then
        # shellcheck disable=SC2086  # one argument per file
        if ! "$bin" -runs=1 $regs >"$log.regressions" 2>&1; then
            echo "not ok - $t: a regression input fails again (log: $log.regressions)"
            tail -n 30 "$log.regressions" | sed 's/^/#   /'
            failed="$failed $t"
            continue
        fi
    fi
    case $t in
        fuzz_config) dict="-dict=$here/yaml.dict" ;;
        *) dict="-dict=$here/http.dict" ;;
    esac
    "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$dir/artifacts/$t/" "$dict" \
        "$dir/corpus/$t" "$here/corpus/$t" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if [ $rc -eq 0 ]; then
        echo "ok - $t (${secs}s, ${execs:-?} runs)"
    else
        echo "not ok - $t (exit $rc; log: $log)"
        grep -E 'ERROR: |SUMMARY: |Test unit written to|runtime error' "$log" | head -n 8 | sed 's/^/#   /'
        failed="$failed $t"
    fi
done
if [ -n "$failed" ]; then
    echo "fuzz: failed:$failed"
    exit 1
fi
