#!/bin/sh
# The main job, for a first look: build scalex, then integrate the shipped demo pancreas
# data (human reference + mouse query, data/demo/) and print where the results are.
set -eu
cd "$(dirname "$0")/.."
JOBS=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$JOBS"
OUT=${OUT:-out/demo}
if ./build/scalex integrate --help >/dev/null 2>&1; then
  ./build/scalex integrate --data_list data/demo/reference_human.h5ad data/demo/query_mouse.h5ad \
    --batch_categories human mouse --max_iteration 1000 -o "$OUT"
  echo "results in $OUT (adata.h5ad, umap.png, log.txt)"
else
  ./build/scalex inspect data/demo/reference_human.h5ad data/demo/query_mouse.h5ad
fi
