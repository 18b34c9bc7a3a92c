#!/usr/bin/env bash
# Seeds the fuzz corpora from the shared corpus of real files (never copied
# into the repository: fuzz/corpus is ignored). Run from fuzz/.
set -euo pipefail
src="${FORGEFLOW_CORPUS:-$(cd "$(dirname "$0")/.." && pwd)/../shared/corpus}/ktx2"
mkdir -p corpus/containers corpus/decode
find "$src" -type f \( -name '*.ktx2' -o -name '*.dds' -o -name '*.png' \) -size -600k \
    -exec cp {} corpus/containers/ \;
echo "seeded $(ls corpus/containers | wc -l) files from $src"
