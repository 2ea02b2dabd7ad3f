#!/bin/sh
# Downloads the Multi30k English-German files (task 1, raw text) from the
# multi30k/dataset repository into data/multi30k and checks them against
# the SHA-256 sums kept next to them. The repository already ships these
# files; run this to restore or verify them.
set -eu

base="https://github.com/multi30k/dataset/raw/master/data/task1/raw"
dir="$(cd "$(dirname "$0")" && pwd)/multi30k"
mkdir -p "$dir"
for split in train val test_2016_flickr; do
    for lang in en de; do
        file="$split.$lang.gz"
        echo "fetching $file" >&2
        curl -fsSL --retry 3 -o "$dir/$file.part" "$base/$file"
        mv "$dir/$file.part" "$dir/$file"
    done
done
cd "$dir" && sha256sum -c SHA256SUMS
