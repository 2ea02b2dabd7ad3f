#!/bin/sh
# Trains a word-level and a subword (BPE) English-German model of the same
# shape with the same schedule on Multi30k, then scores both on
# test_2016_flickr with beam 5, side by side. Run from the repository root
# after building; it takes about two hours on two cores.
#
# usage: bench/subword_vs_word.sh [OUTPUT_DIR] [MERGES]
#   SEQMT_BUILD names the build folder (default build); EPOCHS (12) and
#   TIME_LIMIT (minutes per model, 110) bound each training run; ATTENTION=1
#   trains both models with --attention; BPE_DROPOUT=P trains the subword
#   model with --bpe-dropout P and BPE_THRESHOLD=N with --bpe-threshold N;
#   SAME_SIZE=1 trains the subword model first and caps the word-level
#   vocabularies at its sizes, so that both hold the same number of
#   parameters.
set -eu
out=${1:-bench-out}
merges=${2:-15000}
build=${SEQMT_BUILD:-build}
epochs=${EPOCHS:-12}
limit=${TIME_LIMIT:-110}
attention=
[ "${ATTENTION:-0}" = 1 ] && attention=--attention
subword_flags=
[ -n "${BPE_DROPOUT:-}" ] && subword_flags="--bpe-dropout $BPE_DROPOUT"
[ -n "${BPE_THRESHOLD:-}" ] && subword_flags="$subword_flags --bpe-threshold $BPE_THRESHOLD"
bin=$build/seqmt
mkdir -p "$out"

common="--train-src data/multi30k/train.en.gz --train-tgt data/multi30k/train.de.gz
  --valid-src data/multi30k/val.en.gz --valid-tgt data/multi30k/val.de.gz
  --layers 2 --embed-size 256 --hidden-size 512 --min-count 2 --dropout 0.3
  --batch-size 64 --learning-rate 1.0 --max-grad-norm 5 --epochs $epochs --decay-after 8
  --time-limit $limit --half-precision-model --seed 1 $attention"

zcat data/multi30k/test_2016_flickr.en.gz > "$out/test.en"
zcat data/multi30k/test_2016_flickr.de.gz > "$out/test.de"
# shellcheck disable=SC2086 # $common and $subword_flags are lists of flags
"$bin" train $common --bpe-merges "$merges" --placeholders $subword_flags --output "$out/bpe.seqmt" \
    2> "$out/bpe.log"
sizes=
if [ "${SAME_SIZE:-0}" = 1 ]; then
    # "model: ..., vocabularies 2792 (en) and 3498 (de), ..." gives both sizes.
    sizes=$(sed -n 's/^model:.* vocabularies \([0-9]*\) ([a-z]*) and \([0-9]*\) .*/--src-vocab-size \1 --tgt-vocab-size \2/p' \
        "$out/bpe.log")
    [ -n "$sizes" ] || { echo "no vocabulary sizes in $out/bpe.log" >&2; exit 1; }
fi
# shellcheck disable=SC2086
"$bin" train $common $sizes --output "$out/word.seqmt" 2> "$out/word.log"
for kind in word bpe; do
    "$bin" translate --model "$out/$kind.seqmt" --input "$out/test.en" --output "$out/$kind.de"
    printf '%-5s %s, ' "$kind" "$(grep -m1 '^model:' "$out/$kind.log" | cut -d, -f4-)"
    "$bin" bleu "$out/$kind.de" "$out/test.de"
done
