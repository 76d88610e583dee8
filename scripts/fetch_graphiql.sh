#!/usr/bin/env bash
# Vendor the GraphiQL UMD bundle (and the React it needs) so that the dev-only
# GraphiQL page at /graphql works without internet access and never loads
# anything from a CDN.
#
# Usage: bash scripts/fetch_graphiql.sh [DEST_DIR]   (default: <repo>/static/graphiql)
#
# - Downloads pinned tarballs with `npm pack` (uses npm's configured registry)
#   into a temp dir, extracts only the four files we serve, verifies their
#   SHA-256 against the pins below, then installs them into DEST_DIR together
#   with a VERSIONS file.
# - Idempotent: if every file is already present and VERSIONS matches the pins,
#   it exits 0 immediately without touching the network.
#
# Why these versions: graphiql 3.x is the last major that ships a UMD build
# (graphiql.min.js, exposing window.GraphiQL); React 19 dropped UMD builds, so
# React/ReactDOM are pinned to 18.3.1.
set -euo pipefail

GRAPHIQL_VERSION="3.8.3"
REACT_VERSION="18.3.1"
REACT_DOM_VERSION="18.3.1"

# dest file name | package tarball | path inside tarball | sha256
ASSETS=(
  "react.production.min.js|react|package/umd/react.production.min.js|d949f1c3687aedadcedac85261865f29b17cd273997e7f6b2bfc53b2f9d4c4dd"
  "react-dom.production.min.js|react-dom|package/umd/react-dom.production.min.js|35f4f974f4b2bcd44da73963347f8952e341f83909e4498227d4e26b98f66f0d"
  "graphiql.min.js|graphiql|package/graphiql.min.js|22faab94067b695e5f7959619fbe686ebcc8955002a0c97d986bcbba4ad4bc2c"
  "graphiql.min.css|graphiql|package/graphiql.min.css|b1868247f8e0502cd869e581f5f3cb55b334862e7f51b1d6cbace11059b9adc2"
)

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${script_dir}/.." && pwd)"
dest="${1:-${repo_root}/static/graphiql}"

versions_content="graphiql@${GRAPHIQL_VERSION}
react@${REACT_VERSION}
react-dom@${REACT_DOM_VERSION}"

# ---- fast path: everything present and up to date -> no network -------------
all_present=1
for entry in "${ASSETS[@]}"; do
  IFS='|' read -r name _pkg _path _sha <<<"${entry}"
  [[ -s "${dest}/${name}" ]] || { all_present=0; break; }
done
if [[ ${all_present} -eq 1 && -f "${dest}/VERSIONS" ]] \
  && [[ "$(grep -v '^#' "${dest}/VERSIONS")" == "${versions_content}" ]]; then
  echo "GraphiQL assets already present in ${dest}"
  exit 0
fi

# ---- slow path: fetch ---------------------------------------------------------
if ! command -v npm >/dev/null 2>&1; then
  echo "error: npm is required to fetch GraphiQL assets (node/npm not found on PATH)" >&2
  exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT

echo "Fetching graphiql@${GRAPHIQL_VERSION}, react@${REACT_VERSION}, react-dom@${REACT_DOM_VERSION} with npm pack ..."
(
  cd "${tmp}"
  npm pack --ignore-scripts --silent \
    "graphiql@${GRAPHIQL_VERSION}" \
    "react@${REACT_VERSION}" \
    "react-dom@${REACT_DOM_VERSION}" >/dev/null
)

tarball_for() {
  case "$1" in
    graphiql) echo "${tmp}/graphiql-${GRAPHIQL_VERSION}.tgz" ;;
    react) echo "${tmp}/react-${REACT_VERSION}.tgz" ;;
    react-dom) echo "${tmp}/react-dom-${REACT_DOM_VERSION}.tgz" ;;
    *) echo "unknown package $1" >&2; return 1 ;;
  esac
}

stage="${tmp}/stage"
mkdir -p "${stage}"
for entry in "${ASSETS[@]}"; do
  IFS='|' read -r name pkg path sha <<<"${entry}"
  tgz="$(tarball_for "${pkg}")"
  [[ -f "${tgz}" ]] || { echo "error: npm pack did not produce ${tgz}" >&2; exit 1; }
  tar -xzf "${tgz}" -C "${tmp}" -O "${path}" >"${stage}/${name}"
  actual="$(sha256sum "${stage}/${name}" | cut -d' ' -f1)"
  if [[ "${actual}" != "${sha}" ]]; then
    echo "error: checksum mismatch for ${name} (from ${pkg}:${path})" >&2
    echo "  expected ${sha}" >&2
    echo "  actual   ${actual}" >&2
    exit 1
  fi
done

{
  echo "# Vendored by scripts/fetch_graphiql.sh (npm pack); do not edit."
  echo "${versions_content}"
} >"${stage}/VERSIONS"

mkdir -p "${dest}"
for entry in "${ASSETS[@]}"; do
  IFS='|' read -r name _pkg _path _sha <<<"${entry}"
  mv -f "${stage}/${name}" "${dest}/${name}"
done
# VERSIONS last: its presence marks a complete install.
mv -f "${stage}/VERSIONS" "${dest}/VERSIONS"

echo "GraphiQL assets installed in ${dest}:"
ls -l "${dest}"
