#!/usr/bin/env bash
# Installs the pinned llama.cpp CPU build that the GGUF check uses: node-llama-cpp and its
# prebuilt linux-x64 CPU binaries (no GPU variants), into .llamacpp/ at the repository root
# (ignored by git). Idempotent: does nothing when the pinned versions are already there.
# Needs node >= 20 and npm; exits 0 with a message when they are missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

VERSION=3.21.1
DIR=.llamacpp

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "llamacpp: node/npm not found: skipping the llama.cpp install"
  exit 0
fi

have() {
  node -e "process.exit(require('./$DIR/node_modules/$1/package.json').version === '$VERSION' ? 0 : 1)" 2>/dev/null
}
if have node-llama-cpp && have @node-llama-cpp/linux-x64; then
  echo "llamacpp: node-llama-cpp $VERSION already installed in $DIR"
  exit 0
fi

mkdir -p "$DIR"
[ -f "$DIR/package.json" ] || echo '{"name":"autoq-llamacpp","private":true,"type":"module"}' >"$DIR/package.json"
# --omit=optional drops the CUDA/Vulkan/ARM prebuilt variants (hundreds of MB); the CPU
# binary is named explicitly. NODE_LLAMA_CPP_SKIP_DOWNLOAD stops the postinstall step from
# trying to fetch or build llama.cpp sources (this check only uses the prebuilt binary).
NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --prefix "$DIR" --no-audit --no-fund --omit=optional -E \
  "node-llama-cpp@$VERSION" "@node-llama-cpp/linux-x64@$VERSION"
echo "llamacpp: installed node-llama-cpp $VERSION in $DIR ($(du -sh "$DIR" | cut -f1))"
