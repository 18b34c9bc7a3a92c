#!/usr/bin/env bash
# Seeds the fuzz corpora (fuzz/corpus, ignored: never committed): the shared
# corpus's real files, KTX 1 files written here (the shared corpus has none),
# and tile packs written by forgeflow-tex. Run from fuzz/.
set -euo pipefail
src="${FORGEFLOW_CORPUS:-$(cd "$(dirname "$0")/.." && pwd)/../shared/corpus}/ktx2"
mkdir -p corpus/containers corpus/decode corpus/tile_pack corpus/texture_plan corpus/basis
if [ -d "$src" ]; then
    find "$src" -type f \( -name '*.ktx2' -o -name '*.dds' -o -name '*.png' \) -size -600k \
        -exec cp {} corpus/containers/ \;
    # Basis Universal files (vkFormat 0: the 4 bytes at 12 are zero).
    for f in "$src"/*/*.ktx2; do
        if [ "$(od -An -tu4 -j12 -N4 "$f" | tr -d ' ')" = 0 ]; then cp "$f" corpus/basis/; fi
    done
fi
# KTX 1.1: an RGBA8 file with its mips and a BC1 one (the header of the
# KTX 1.1 specification, little-endian).
python3 - <<'PY'
import struct
def ktx1(path, gl_type, gl_format, internal, base, w, h, levels, texel_bytes, block):
    out = bytearray(b'\xabKTX 11\xbb\r\n\x1a\n')
    out += struct.pack('<13I', 0x04030201, gl_type, 1, gl_format, internal, base,
                       w, h, 0, 0, 1, levels, 0)
    for level in range(levels):
        lw, lh = max(w >> level, 1), max(h >> level, 1)
        size = -(-lw // block) * -(-lh // block) * texel_bytes
        out += struct.pack('<I', size) + bytes((i * 37 + level) & 255 for i in range(size))
        out += b'\0' * (-size % 4)
    open(path, 'wb').write(out)
ktx1('corpus/containers/rgba8_mips.ktx', 0x1401, 0x1908, 0x8058, 0x1908, 16, 8, 5, 4, 1)
ktx1('corpus/containers/bc1.ktx', 0, 0, 0x83F1, 0x1908, 16, 16, 1, 8, 4)
PY
# Tile packs: the procedural terrain, plain and zstd.
tex() { cargo run --quiet --manifest-path ../Cargo.toml -p forgeflow-tools --bin forgeflow-tex -- "$@"; }
tex vt-build --terrain 512 --tile 128 -o corpus/tile_pack/terrain.vtpack >/dev/null
tex vt-build --terrain 256 --tile 64 --zstd -o corpus/tile_pack/terrain_zstd.vtpack >/dev/null
echo "seeded: $(ls corpus/containers | wc -l) containers, $(ls corpus/basis | wc -l) Basis files, $(ls corpus/tile_pack | wc -l) tile packs"
