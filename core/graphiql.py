"""Self-hosted GraphiQL page for development: every asset is served by the app, never from a CDN.

The assets (GraphiQL 3.x UMD bundle plus React/ReactDOM 18 UMD builds) are vendored into
``static/graphiql/`` by ``scripts/fetch_graphiql.sh``; mount that directory as static files
under ``/static/graphiql`` and serve :func:`graphiql_html` at the GraphQL endpoint.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from pathlib import Path

GRAPHIQL_STATIC_DIR: Path = Path(__file__).resolve().parent.parent / "static" / "graphiql"

# Load order matters: GraphiQL's UMD bundle expects window.React and window.ReactDOM.
GRAPHIQL_SCRIPTS: tuple[str, ...] = (
    "react.production.min.js",
    "react-dom.production.min.js",
    "graphiql.min.js",
)
GRAPHIQL_STYLESHEETS: tuple[str, ...] = ("graphiql.min.css",)
GRAPHIQL_ASSETS: tuple[str, ...] = GRAPHIQL_STYLESHEETS + GRAPHIQL_SCRIPTS


def graphiql_assets_present(dir: Path = GRAPHIQL_STATIC_DIR) -> bool:
    """True when every file the page references exists (non-empty) in ``dir``."""
    directory = Path(dir)
    return all((directory / name).is_file() and (directory / name).stat().st_size > 0 for name in GRAPHIQL_ASSETS)


def _same_origin_path(value: str, what: str) -> str:
    """Accept only an absolute path on this origin ("/x"), never a URL or a protocol-relative "//host"."""
    if not value.startswith("/") or value.startswith("//") or "\\" in value or "://" in value:
        raise ValueError(f"{what} must be a same-origin absolute path like '/graphql', got {value!r}")
    return value


def _js_string(value: str) -> str:
    """A JS string literal that is also safe inside an inline <script> element."""
    return (
        json.dumps(value)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="robots" content="noindex">
  <title>GraphiQL</title>
  <link rel="icon" href="data:,">
{stylesheets}
  <style>
    html, body {{ height: 100%; margin: 0; overflow: hidden; }}
    #graphiql {{ height: 100vh; }}
  </style>
</head>
<body>
  <div id="graphiql">Loading GraphiQL&hellip;</div>
{scripts}
  <script>
    (function () {{
      // Same-origin HTTP endpoint; the websocket URL is derived from the page's own
      // location: scheme http becomes ws, https becomes wss.
      var httpUrl = new URL({endpoint}, window.location.href).href;
      var subscriptionUrl = httpUrl.replace(/^http/, "ws");

      // For subscriptions the toolkit opens a graphql-ws client (graphql-transport-ws
      // protocol) per operation, with connectionParams = {{...wsConnectionParams,
      // ...headers from the header editor}}. So a token pasted in the Headers tab as
      // {{"Authorization": "Bearer <token>"}} is sent both as an HTTP header on queries /
      // mutations and in the connection_init payload of subscriptions.
      var fetcher = GraphiQL.createFetcher({{
        url: httpUrl,
        subscriptionUrl: subscriptionUrl,
        wsConnectionParams: {{}}
      }});

      var root = ReactDOM.createRoot(document.getElementById("graphiql"));
      root.render(
        React.createElement(GraphiQL, {{
          fetcher: fetcher,
          isHeadersEditorEnabled: true,
          shouldPersistHeaders: false,
          defaultEditorToolsVisibility: "headers"
        }})
      );
    }})();
  </script>
</body>
</html>
"""


def graphiql_html(endpoint: str = "/graphql", static_prefix: str = "/static/graphiql") -> str:
    """A complete HTML page rendering GraphiQL against ``endpoint`` with assets from ``static_prefix``.

    Both arguments must be same-origin absolute paths (e.g. ``/graphql``); full URLs and
    protocol-relative ``//host`` forms are rejected with ``ValueError``.
    """
    endpoint = _same_origin_path(endpoint, "endpoint")
    prefix = _same_origin_path(static_prefix, "static_prefix").rstrip("/")

    def asset(name: str) -> str:
        return html.escape(f"{prefix}/{name}", quote=True)

    stylesheets = "\n".join(f'  <link rel="stylesheet" href="{asset(n)}">' for n in GRAPHIQL_STYLESHEETS)
    scripts = "\n".join(f'  <script src="{asset(n)}"></script>' for n in GRAPHIQL_SCRIPTS)
    return _PAGE.format(stylesheets=stylesheets, scripts=scripts, endpoint=_js_string(endpoint))


_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def graphiql_csp(page: str) -> str:
    """The Content-Security-Policy for a page made by :func:`graphiql_html`: scripts only from this origin plus
    the page's own inline start-up script (by its hash), requests only to this origin, no frames, no plugins.
    Styles may be inline (GraphiQL and CodeMirror style elements as they lay out)."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in _INLINE_SCRIPT.findall(page)
    )
    return (
        f"default-src 'none'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )
