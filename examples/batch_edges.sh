#!/usr/bin/env bash
# Batch example: edge maps for every image in a folder, with no language model.
#   examples/batch_edges.sh photos/ out/
# Prints one `input<TAB>output` line per image; stops at the first failure.
set -euo pipefail
src=${1:?usage: batch_edges.sh INPUT_DIR OUT_DIR}
out=${2:-vchat-out}
shopt -s nullglob nocaseglob
for image in "$src"/*.{png,jpg,jpeg,webp}; do
    result=$(vchat run --tool canny_edges -i "$image" --arg low=80 --arg high=160 -o "$out" | tail -n 1)
    printf '%s\t%s\n' "$image" "${result#*$'\t'}"
done
