"""Route registration as clients see it: the query rules, and the docs pages served offline."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.support.api import READ, WRITE, assert_error, trigger_body

ASSET_TYPES = {
    ".css": "text/css",
    ".js": "text/javascript",
    ".png": "image/png",
    ".json": "application/json",
}


@pytest.mark.parametrize("base", ["", "/api"])
@pytest.mark.parametrize("repo", ["widgets", "acme/", "/widgets", "acme/widgets/extra"])
async def test_listing_refuses_a_repo_that_is_not_owner_and_name(
    client: httpx.AsyncClient, base: str, repo: str
) -> None:
    response = await client.get(f"{base}/jobs", params={"repo": repo}, headers=READ)

    error = assert_error(response, 422, "validation_error")
    assert [problem["loc"] for problem in error["problems"]] == [["query", "repo"]]
    assert error["message"].startswith("query.repo: ")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_load_every_asset_from_this_server(
    client: httpx.AsyncClient, page: str
) -> None:
    # asked without a token (and no anonymous reads): the pages and their assets are public
    assert "authorization" not in client.headers
    html = await client.get(page)
    assert html.status_code == 200
    assert html.headers["content-type"].startswith("text/html")
    assert not re.findall(r"https?://", html.text), "the page names another host"

    assets = re.findall(r"""(?:src|href|spec-url)=["']([^"']+)["']|url: '([^']+)'""", html.text)
    urls = {src or url for src, url in assets}
    assert {url.rsplit(".", 1)[-1] for url in urls} >= {"js", "png", "json"}
    for url in urls:
        assert url.startswith("/"), url
        asset = await client.get(url)
        assert asset.status_code == 200, url
        expected = ASSET_TYPES["." + url.rsplit(".", 1)[-1]]
        assert asset.headers["content-type"].startswith(expected), (url, asset.headers)
        assert asset.content, url


@pytest.mark.parametrize("base", ["", "/api"])
async def test_job_route_answers_head_and_names_its_methods_under_every_alias(
    client: httpx.AsyncClient, base: str
) -> None:
    job = (await client.post("/jobs", headers=WRITE, json=trigger_body())).json()
    path = f"{base}/jobs/{job['id']}"

    head = await client.head(path, headers=READ)
    wrong = await client.put(path, headers=WRITE)

    assert (head.status_code, head.content) == (200, b"")
    assert_error(wrong, 405, "method_not_allowed")
    assert set(wrong.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD"}
