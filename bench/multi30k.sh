#!/bin/sh
# Measures the bundled English-German model on Multi30k test_2016_flickr:
# translation time with beam 5 (and greedy), BLEU against the raw German
# references, and OpenBLAS sgemm throughput measured in the same run for
# reference. Run from the repository root after building.
#
# usage: bench/multi30k.sh [MODEL]   (SEQMT_BUILD names the build folder, default build)
set -eu
model=${1:-models/en-de.seqmt}
build=${SEQMT_BUILD:-build}
bin=$build/seqmt
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo "model: $model ($(du -h "$model" | cut -f1))"
"$build/seqmt-sgemm-peak" 1
zcat data/multi30k/test_2016_flickr.en.gz > "$work/test.en"
zcat data/multi30k/test_2016_flickr.de.gz > "$work/test.de"
for beam in 5 1; do
    start=$(date +%s.%N)
    "$bin" translate --model "$model" --beam-size "$beam" --input "$work/test.en" \
        --output "$work/hyp.$beam"
    end=$(date +%s.%N)
    lines=$(wc -l < "$work/hyp.$beam")
    awk -v b="$beam" -v n="$lines" -v s="$start" -v e="$end" \
        'BEGIN { printf "beam %s: %s lines translated in %.1f s\n", b, n, e - s }'
    printf 'beam %s: ' "$beam"
    "$bin" bleu "$work/hyp.$beam" "$work/test.de"
done
