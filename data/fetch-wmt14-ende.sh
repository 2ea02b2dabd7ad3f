#!/bin/sh
# Downloads WMT14 English-German from statmt.org (Europarl v7, Common
# Crawl, News Commentary v9; newstest2013 for validation, newstest2014 for
# test) and prepares it for seqmt train:
#   DEST/train.en.gz, DEST/train.de.gz   about 4.5 million line-aligned pairs
#   DEST/valid.en, DEST/valid.de         newstest2013
#   DEST/test.en.sgm, DEST/test.de.sgm   newstest2014 (seqmt reads SGML directly)
# Needs curl, tar and gzip, about 2 GB of downloads and 4 GB of disk.
#
# usage: data/fetch-wmt14-ende.sh [DEST]   (default data/wmt14-ende)
set -eu

dest=${1:-"$(cd "$(dirname "$0")" && pwd)/wmt14-ende"}
raw="$dest/raw"
mkdir -p "$raw"

fetch() {
    if [ ! -s "$raw/$2" ]; then
        echo "fetching $1" >&2
        curl -fSL --retry 3 -o "$raw/$2.part" "$1"
        mv "$raw/$2.part" "$raw/$2"
    fi
    tar -xzf "$raw/$2" -C "$raw"
}

fetch http://www.statmt.org/wmt13/training-parallel-europarl-v7.tgz europarl.tgz
fetch http://www.statmt.org/wmt13/training-parallel-commoncrawl.tgz commoncrawl.tgz
fetch http://www.statmt.org/wmt14/training-parallel-nc-v9.tgz nc-v9.tgz
fetch http://www.statmt.org/wmt14/dev.tgz dev.tgz
fetch http://www.statmt.org/wmt14/test-full.tgz test-full.tgz

# The three training corpora, each a line-aligned pair of files.
for lang in en de; do
    cat "$raw/training/europarl-v7.de-en.$lang" \
        "$raw/commoncrawl.de-en.$lang" \
        "$raw/training/news-commentary-v9.de-en.$lang" | gzip > "$dest/train.$lang.gz.part"
    mv "$dest/train.$lang.gz.part" "$dest/train.$lang.gz"
done
src_lines=$(zcat "$dest/train.en.gz" | wc -l)
tgt_lines=$(zcat "$dest/train.de.gz" | wc -l)
if [ "$src_lines" -ne "$tgt_lines" ]; then
    echo "train.en.gz has $src_lines lines but train.de.gz has $tgt_lines" >&2
    exit 1
fi

cp "$raw/dev/newstest2013.en" "$dest/valid.en"
cp "$raw/dev/newstest2013.de" "$dest/valid.de"
cp "$raw/test-full/newstest2014-deen-src.en.sgm" "$dest/test.en.sgm"
cp "$raw/test-full/newstest2014-deen-ref.de.sgm" "$dest/test.de.sgm"
echo "WMT14 en-de ready in $dest: $src_lines training pairs" >&2
