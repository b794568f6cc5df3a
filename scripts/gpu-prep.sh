#!/usr/bin/env bash
# gpu-prep.sh: run on the development machine before the device call. The device machine gets
# a copy of the working tree without .git, so the GPU check cannot ask git which commit it
# runs; this writes .gpu-commit (git-ignored: name it in the device call's carry) with the
# commit, whether the tree differs from it, and a SHA-256 over the tracked files' contents
# in `git ls-files` order, followed by that file list. scripts/gpu-check.sh recomputes the
# hash over the same files on the device and records "commit X, tree verified" or "tree
# differs" in its summary.
#
#   scripts/gpu-prep.sh && <device run carrying .gpu-commit> scripts/gpu-check.sh
set -eu
cd "$(dirname "$0")/.."
commit=$(git rev-parse HEAD)
dirty=no
git diff --quiet HEAD -- || dirty=yes
files=$(git ls-files)
sum=$(printf '%s\n' "$files" | while IFS= read -r f; do [ -f "$f" ] && sha256sum "$f"; done | sha256sum | cut -d' ' -f1)
{
  echo "commit $commit"
  echo "dirty $dirty"
  echo "subject $(git log -1 --format=%s | cut -c1-120)"
  echo "tree-sha256 $sum"
  echo "files:"
  printf '%s\n' "$files"
} >.gpu-commit.tmp
mv .gpu-commit.tmp .gpu-commit
# The real-model test data (git-ignored .gpu-data: name it in the carry); gpu-check.sh points
# AUTOQ_SHARED_DATA at it.
if [ -d ../shared/data ]; then
  mkdir -p .gpu-data
  cp ../shared/data/stories260K.bin ../shared/data/tok512.bin ../shared/data/tinystories_val.txt \
    ../shared/data/stories260K_greedy256.json .gpu-data/ 2>/dev/null || true
fi
echo "wrote .gpu-commit: commit ${commit:0:12}, local changes: $dirty, tree sha256 ${sum:0:16}"
