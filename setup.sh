#!/bin/sh
# Installs what seqmt's build needs from Debian's packages, and with
# --tests also what its tests need. Does nothing when every package is
# already installed.
#
# usage: ./setup.sh [--tests]
set -eu

packages="cmake make gcc libc6-dev pkg-config libopenblas-dev libutf8proc-dev libcjson-dev
libmicrohttpd-dev libcunit1-dev zlib1g-dev curl ca-certificates"
# Tests only: tests/check_deploy.py reads the Kubernetes manifests with
# python3-yaml, and tests/check_web_page.py drives the page in Chromium.
case "${1:-}" in
--tests) packages="$packages python3 python3-yaml chromium" ;;
"") ;;
*)
    echo "setup.sh: unknown argument '$1'; usage: ./setup.sh [--tests]" >&2
    exit 2
    ;;
esac

missing=""
for p in $packages; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    sudo=""
elif command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
else
    echo "setup.sh: missing packages:$missing; run as root or install sudo" >&2
    exit 1
fi
echo "setup.sh: installing$missing" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
