#!/bin/sh
# Builds every command in cmd/, and deploy/probe (the image's healthcheck),
# as static binaries into OUTDIR: the one place the container image's build
# flags are written. The Dockerfile runs it, and so does the test of the
# image (internal/deploytest), so a build that would break the image breaks
# `make test` first.
#
#   deploy/build-static.sh OUTDIR
#
# CGO_ENABLED=0: no libc, so the binaries run on distroless/static (no
# dynamic loader there); -trimpath: no build machine paths in the binaries;
# -ldflags '-s -w': no symbol table or DWARF (smaller image; panics still
# print file:line); -buildvcs=false: the same binaries with or without a
# .git (the Docker build context has none).
# GOOS and GOARCH are taken from the environment as usual.
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi
mkdir -p "$1"
out=$(cd "$1" && pwd)
cd "$(dirname "$0")/.."

CGO_ENABLED=0 exec go build -trimpath -buildvcs=false -ldflags='-s -w' -o "$out/" ./cmd/... ./deploy/probe
