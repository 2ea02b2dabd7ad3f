#!/bin/sh
# Checks the Dockerfile without a Docker engine: every shared library the
# seqmt binary links directly (its ELF NEEDED entries) must come from a
# Debian package that the runtime stage installs (or from libc6, which the
# base image has), and the README's docker commands must match the
# Dockerfile's port and the model path.
#
# usage: check_docker_recipe.sh SEQMT_BINARY SOURCE_DIR
set -eu
bin=$1
src=$2
dockerfile="$src/Dockerfile"
fail=0

# Packages installed by the last stage: the apt-get line after the last FROM.
runtime=$(awk '/^FROM/ { stage = "" } { stage = stage "\n" $0 } END { print stage }' \
    "$dockerfile" | tr ' \\' '\n\n' | grep -E '^(lib[a-z0-9.+-]+|zlib1g|curl)$' | sort -u)

for lib in $(readelf -d "$bin" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p'); do
    path=$(ldd "$bin" | awk -v l="$lib" '$1 == l { print $3 }')
    if [ -z "$path" ]; then
        echo "FAIL: $lib is not found by ldd" >&2
        fail=1
        continue
    fi
    real=$(readlink -f "$path")
    pkg=$(dpkg -S "$path" 2>/dev/null || dpkg -S "$real" 2>/dev/null || true)
    pkg=${pkg%%:*}
    case "$pkg" in
    libc6 | "") [ -n "$pkg" ] && continue ;;
    esac
    if [ -z "$pkg" ]; then
        echo "FAIL: no Debian package owns $path ($lib)" >&2
        fail=1
    elif ! echo "$runtime" | grep -qx "$pkg"; then
        echo "FAIL: $lib comes from $pkg, which the runtime stage of $dockerfile does not install" >&2
        fail=1
    else
        echo "ok: $lib from $pkg"
    fi
done

# The README's docker run must publish the port the image exposes, and the
# image's model must be the bundled one.
port=$(sed -n 's/^EXPOSE \([0-9]*\).*/\1/p' "$dockerfile")
if ! grep -q "docker run .*-p [0-9]*:$port" "$src/README.md"; then
    echo "FAIL: README has no 'docker run ... -p HOST:$port' matching EXPOSE $port" >&2
    fail=1
fi
if ! grep -q "^COPY models/en-de.seqmt /usr/share/seqmt/en-de.seqmt" "$dockerfile" ||
   ! grep -q "SEQMT_MODEL=/usr/share/seqmt/en-de.seqmt" "$dockerfile"; then
    echo "FAIL: the Dockerfile does not install the bundled model where SEQMT_MODEL points" >&2
    fail=1
fi
if ! grep -q "docker build -t seqmt" "$src/README.md"; then
    echo "FAIL: README has no 'docker build -t seqmt' command" >&2
    fail=1
fi
exit $fail
