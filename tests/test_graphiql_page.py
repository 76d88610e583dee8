"""The development GraphiQL page loads everything from this app: no CDN, no absolute URLs."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from core.graphiql import (
    GRAPHIQL_ASSETS,
    GRAPHIQL_STATIC_DIR,
    graphiql_assets_present,
    graphiql_html,
)

STATIC_PREFIX = "/static/graphiql/"


class _RefCollector(HTMLParser):
    """Collects (tag, attribute, value) for every src/href in the page."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value is not None:
                self.refs.append((tag, name, value))


def _refs(page: str) -> list[tuple[str, str, str]]:
    parser = _RefCollector()
    parser.feed(page)
    parser.close()
    return parser.refs


def _asset_refs(page: str) -> list[str]:
    # The favicon is an inline "data:," URL so the browser does not request /favicon.ico.
    return [value for _tag, _attr, value in _refs(page) if not value.startswith("data:")]


def test_page_is_complete_html() -> None:
    page = graphiql_html()
    assert page.lstrip().lower().startswith("<!doctype html>")
    assert '<div id="graphiql">' in page
    assert page.rstrip().endswith("</html>")


def test_every_src_and_href_is_same_origin_static_path() -> None:
    refs = _refs(graphiql_html())
    assert refs, "page references no assets"
    for tag, attr, value in refs:
        if tag == "link" and attr == "href" and value == "data:,":
            continue
        assert value.startswith(STATIC_PREFIX), (tag, attr, value)
        assert not value.startswith("//"), value
        assert "://" not in value, value


def test_no_absolute_or_protocol_relative_urls_in_src_or_href() -> None:
    page = graphiql_html()
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.IGNORECASE)
    assert "http://" not in page
    assert "https://" not in page


def test_references_exactly_the_vendored_assets_in_load_order() -> None:
    refs = _asset_refs(graphiql_html())
    assert sorted(refs) == sorted(STATIC_PREFIX + name for name in GRAPHIQL_ASSETS)
    scripts = [value for tag, _attr, value in _refs(graphiql_html()) if tag == "script"]
    # GraphiQL's UMD bundle needs window.React and window.ReactDOM defined first.
    assert scripts == [
        STATIC_PREFIX + "react.production.min.js",
        STATIC_PREFIX + "react-dom.production.min.js",
        STATIC_PREFIX + "graphiql.min.js",
    ]


def test_fetcher_uses_endpoint_and_websocket_url_from_window_location() -> None:
    page = graphiql_html()
    assert "GraphiQL.createFetcher(" in page
    assert 'new URL("/graphql", window.location.href)' in page
    # http -> ws, https -> wss, computed in the browser, not hard-coded.
    assert 'replace(/^http/, "ws")' in page
    assert "subscriptionUrl: subscriptionUrl" in page
    assert "wsConnectionParams" in page
    assert "ws://" not in page and "wss://" not in page


def test_header_editor_enabled() -> None:
    page = graphiql_html()
    assert "isHeadersEditorEnabled: true" in page
    assert 'defaultEditorToolsVisibility: "headers"' in page


def test_custom_endpoint_and_prefix() -> None:
    page = graphiql_html(endpoint="/api/graphql", static_prefix="/assets/gql/")
    assert 'new URL("/api/graphql", window.location.href)' in page
    refs = _asset_refs(page)
    assert refs and all(value.startswith("/assets/gql/") and "//" not in value for value in refs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"endpoint": "http://evil.example/graphql"},
        {"endpoint": "//evil.example/graphql"},
        {"endpoint": "graphql"},
        {"static_prefix": "https://cdn.example/graphiql"},
        {"static_prefix": "//cdn.example/graphiql"},
    ],
)
def test_rejects_non_same_origin_paths(kwargs: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        graphiql_html(**kwargs)


def test_endpoint_cannot_break_out_of_inline_script() -> None:
    page = graphiql_html(endpoint="/graphql</script><script>alert(1)</script>")
    assert page.count("</script>") == 4  # three asset tags + the inline init script
    assert "alert(1)</script>" not in page


def test_static_dir_is_repo_root_static_graphiql() -> None:
    repo_root = Path(__file__).resolve().parent.parent
    assert repo_root / "static" / "graphiql" == GRAPHIQL_STATIC_DIR


def test_assets_present_false_for_empty_dir(tmp_path: Path) -> None:
    assert graphiql_assets_present(tmp_path) is False
    for name in GRAPHIQL_ASSETS[:-1]:
        (tmp_path / name).write_text("x")
    assert graphiql_assets_present(tmp_path) is False
    (tmp_path / GRAPHIQL_ASSETS[-1]).write_text("x")
    assert graphiql_assets_present(tmp_path) is True


@pytest.mark.skipif(
    not graphiql_assets_present(),
    reason="GraphiQL assets not fetched (run: bash scripts/fetch_graphiql.sh)",
)
def test_every_referenced_file_exists_in_static_dir() -> None:
    for value in _asset_refs(graphiql_html()):
        relative = value.removeprefix(STATIC_PREFIX)
        path = GRAPHIQL_STATIC_DIR / relative
        assert path.is_file() and path.stat().st_size > 0, path
