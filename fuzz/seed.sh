#!/usr/bin/env bash
# Fill fuzz/corpus/<target>/ with seed inputs at run time (never commit corpus files).
#
#   fuzz/seed.sh            seeds from ${MES_CORPUS_DIR:-<repo>/../shared/corpus}
#   MES_SEED_MAX_BYTES=N    largest binlog copied (default 65536)
#
# decode_stream inputs are one control byte + the file (see fuzz_targets/decode_stream.rs):
# every file is copied twice, CRC verification off (so mutations reach the parsers) and on,
# with different chunk sizes and magic modes.
set -euo pipefail

FUZZ_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$FUZZ_DIR/.." && pwd)"
CORPUS_SRC="${MES_CORPUS_DIR:-$REPO/../shared/corpus}"
MAX_BYTES="${MES_SEED_MAX_BYTES:-65536}"
OUT="$FUZZ_DIR/corpus"

[ -d "$CORPUS_SRC" ] || { echo "seed.sh: corpus dir $CORPUS_SRC not found (set MES_CORPUS_DIR)" >&2; exit 1; }
mkdir -p "$OUT/decode_stream" "$OUT/json_binary" "$OUT/rows_values"

# ---- decode_stream: real binlogs (files starting with \xfebin), small ones only ----
ctl_off=(0x00 0x10 0x70 0xa0 0xd0 0xf0 0x40 0x20)   # verify off, Auto magic, various chunk sizes
ctl_on=(0x02 0x32 0x92 0xc2 0xe2)                    # verify on
n=0
while IFS= read -r -d '' f; do
    size=$(stat -c %s "$f")
    [ "$size" -le "$MAX_BYTES" ] || continue
    [ "$(head -c 4 "$f" | od -An -tx1 | tr -d ' \n')" = "fe62696e" ] || continue
    name="$(printf '%s' "${f#"$CORPUS_SRC"/}" | tr '/' '_')"
    c1=${ctl_off[$((n % ${#ctl_off[@]}))]}
    c2=${ctl_on[$((n % ${#ctl_on[@]}))]}
    { printf "\\x${c1#0x}"; cat "$f"; } >"$OUT/decode_stream/$name.off"
    { printf "\\x${c2#0x}"; cat "$f"; } >"$OUT/decode_stream/$name.crc"
    # The same file without its magic, decoded as a replication stream (MagicMode::None).
    { printf '\x08'; tail -c +5 "$f"; } >"$OUT/decode_stream/$name.nomagic"
    n=$((n + 1))
done < <(find "$CORPUS_SRC" -type f -print0 | sort -z)
echo "seed.sh: $n binlogs -> $OUT/decode_stream" >&2

# ---- json_binary: a few hand-made MySQL binary JSON values ----
j="$OUT/json_binary"
printf '\x04\x00'                     >"$j/null"          # literal null
printf '\x04\x01'                     >"$j/true"          # literal true
printf '\x05\xff\x7f'                 >"$j/int16"         # 32767
printf '\x07\x01\x00\x00\x80'         >"$j/int32"
printf '\x09\x01\x00\x00\x00\x00\x00\x00\x80' >"$j/int64"
printf '\x0b\x00\x00\x00\x00\x00\x00\xf8\x3f' >"$j/double"  # 1.5
printf '\x0c\x05hello'                >"$j/string"
# small object {"a": 1}: count=1, size=12, key entry (offset 11, len 1), value entry (int16 inline 1), key "a"
printf '\x00\x01\x00\x0c\x00\x0b\x00\x01\x00\x05\x01\x00a' >"$j/object"
# small array [1, "x"]: count=2, size=14, entries (int16 1), (string at offset 12), string "x"
printf '\x02\x02\x00\x0e\x00\x05\x01\x00\x0c\x0c\x00\x01x' >"$j/array"
# opaque DECIMAL 1.5 (type 246, precision 2, scale 1)
printf '\x0f\xf6\x04\x02\x01\x81\x05' >"$j/opaque_decimal"

# ---- rows_values: one INT + VARCHAR(255) + DATETIME2(6) write row ----
r="$OUT/rows_values"
# head=0x02 (3 cols, write); cols: LONG(sel 3), VARCHAR(sel 15, meta 255), DATETIME2(sel 18, meta 6)
printf '\x02\x03\x00\x00\x00\x0f\xff\x00\x00\x12\x06\x00\x00\x00\x2a\x00\x00\x00\x02hi\x99\xb5\x2e\x8b\x60\x00\x00\x01' >"$r/int_varchar_datetime"
# 2 cols update: NEWDECIMAL(12,2) (sel 24, meta 0x020c), DOUBLE (sel 5, meta 8)
printf '\x09\x18\x0c\x02\x00\x05\x08\x00\x00\x00\x80\x00\x00\x00\x00\x7b\x2d\x00\x00\x00\x00\x00\x00\xf0\x3f\x00\x80\x00\x00\x00\x00\x7c\x2d\x00\x00\x00\x00\x00\x00\x00\x40' >"$r/decimal_double_update"
echo "seed.sh: seeds in $OUT" >&2
