#!/usr/bin/env bash
# Makes the release archive of one static binary, as the Release workflow
# (.github/workflows/release.yml) attaches it to a tag, and as
# tests/install/test.sh checks it in CI:
#
#   scripts/package.sh VERSION TARGET BINARY [OUTDIR]
#   e.g. scripts/package.sh 0.1.0 x86_64-unknown-linux-musl \
#            target/x86_64-unknown-linux-musl/release/hajimi dist
#
# writes OUTDIR (default: dist)/hajimi-VERSION-TARGET.tar.gz and its
# .sha256, holding one folder hajimi-VERSION-TARGET/ with:
#   hajimi          the binary (as given: strip it first)
#   install.sh      scripts/install.sh (finds ./hajimi by itself)
#   README.md
#   docs/en, docs/zh  the guides and docs/en/settings.md, every setting
#   deploy/         the replicas Compose files the guides point at
#   LICENSE*        when the repository has one
# Files are owned by 0:0 in the archive. Prints the archive's path last.
set -euo pipefail

if (($# < 3 || $# > 4)); then
    echo "usage: scripts/package.sh VERSION TARGET BINARY [OUTDIR]" >&2
    exit 2
fi
version=$1
target=$2
binary=$3
outdir=${4:-dist}
repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)

[[ -f $binary && -x $binary ]] || {
    echo "package.sh: $binary is not an executable file" >&2
    exit 1
}

name="hajimi-$version-$target"
mkdir -p -- "$outdir"
outdir=$(cd -- "$outdir" && pwd)
stage=$(mktemp -d)
trap 'rm -rf -- "$stage"' EXIT
dir=$stage/$name
mkdir -p -- "$dir/docs"

cp -- "$binary" "$dir/hajimi"
cp -- "$repo/scripts/install.sh" "$dir/install.sh"
cp -- "$repo/README.md" "$dir/"
cp -R -- "$repo/docs/en" "$repo/docs/zh" "$dir/docs/"
cp -R -- "$repo/deploy" "$dir/deploy"
for license in LICENSE LICENSE-MIT LICENSE-APACHE LICENSE.md LICENSE.txt; do
    if [[ -f $repo/$license ]]; then cp -- "$repo/$license" "$dir/"; fi
done
# Only what belongs in a release: no editor or local files (deploy/replicas/.env).
find "$dir" -mindepth 1 \( -name '.*' -o -name '*~' \) -prune -exec rm -rf -- {} +
chmod 0755 "$dir/hajimi" "$dir/install.sh"
find "$dir" -type d -exec chmod 0755 {} +
find "$dir" -type f ! -name hajimi ! -name install.sh -exec chmod 0644 {} +

(
    cd -- "$stage"
    tar --owner=0 --group=0 --numeric-owner --sort=name -czf "$outdir/$name.tar.gz" "$name"
)
(
    cd -- "$outdir"
    sha256sum "$name.tar.gz" >"$name.tar.gz.sha256"
)
echo "$outdir/$name.tar.gz"
