#!/usr/bin/env bash
# Runs a command with a Node.js that bulwark supports (>= 22.12).
#
# When the `node` on PATH is older (or missing), this installs the registry
# package `node-<platform>-<arch>` at major 24 into a cache folder, puts its
# bin/ first on PATH and then runs the command. Nothing is downloaded from
# anywhere but the npm registry.
#
# `--version X.Y.Z` asks for exactly that release instead (the consumer smoke
# test runs on the oldest supported one), from its own cache folder.
#
#   scripts/node.sh vitest run
#   eval "$(scripts/node.sh --print-path)"   # for an interactive shell
#   scripts/node.sh --version 22.12.0 node app.js
set -euo pipefail

want=""
if [ "${1-}" = "--version" ]; then
  want="${2:?scripts/node.sh: --version needs a version, e.g. 22.12.0}"
  shift 2
fi

supported() {
  command -v node >/dev/null 2>&1 || return 1
  if [ -n "$want" ]; then
    [ "$(node --version 2>/dev/null)" = "v$want" ]
    return
  fi
  node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 22 || (a === 22 && b >= 12) ? 0 : 1)' 2>/dev/null
}

if ! supported; then
  case "$(uname -s)" in
    Linux) os=linux ;;
    Darwin) os=darwin ;;
    *) echo "scripts/node.sh: no node-<platform> package for $(uname -s); install Node.js >= 22.12 yourself" >&2; exit 1 ;;
  esac
  case "$(uname -m)" in
    x86_64 | amd64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) echo "scripts/node.sh: no node-$os-<arch> package for $(uname -m); install Node.js >= 22.12 yourself" >&2; exit 1 ;;
  esac
  pkg="node-$os-$arch"
  release="${want:-24}"
  if [ -n "$want" ]; then
    cache="${XDG_CACHE_HOME:-$HOME/.cache}/bulwark/node-$want"
  else
    cache="${BULWARK_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bulwark/node-24}"
  fi
  bin="$cache/node_modules/$pkg/bin"
  if [ ! -x "$bin/node" ]; then
    mkdir -p "$cache"
    # One installer at a time, even when several scripts start together.
    exec 9>"$cache/.lock"
    flock 9 2>/dev/null || true
    if [ ! -x "$bin/node" ]; then
      echo "scripts/node.sh: node $(node --version 2>/dev/null || echo missing) is not ${want:-22.12 or newer}; installing $pkg@$release into $cache" >&2
      [ -f "$cache/package.json" ] || echo '{"private":true}' >"$cache/package.json"
      npm install --prefix "$cache" --no-save --no-package-lock --no-audit --no-fund --loglevel=error "$pkg@$release" >&2
    fi
    exec 9>&-
  fi
  export PATH="$bin:$PATH"
  supported || { echo "scripts/node.sh: $bin/node does not run" >&2; exit 1; }
fi

if [ "${1-}" = "--print-path" ]; then
  printf 'export PATH=%q\n' "$PATH"
  exit 0
fi
exec "$@"
