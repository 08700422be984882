"""The dashboard's page and files as the server serves them: no token, strict CSP, caching."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from tests.support.api import PUBLIC_URL, WRITE, assert_error, trigger_body

ASSET = re.compile(r'(?:src|href)="(/ui/static/[0-9a-f]{16}/[a-z]+\.(?:js|css))"')


async def page_assets(client: httpx.AsyncClient, path: str = "/") -> list[str]:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    return ASSET.findall(page.text)


async def test_the_dashboard_page_is_served_without_a_token_under_a_strict_policy(
    client: httpx.AsyncClient,
) -> None:
    assert "authorization" not in client.headers
    page = await client.get("/")

    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy
    assert "'unsafe-inline'" not in policy
    assert "default-src 'none'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-cache"
    # no inline script: every script is a file of this server
    assert re.findall(r"<script[^>]*>", page.text) == [
        f'<script type="module" src="{src}">' for src in ASSET.findall(page.text) if ".js" in src
    ]
    assert "http://" not in page.text
    assert "https://" not in page.text


async def test_every_file_the_page_names_is_served_cached_for_good(
    client: httpx.AsyncClient,
) -> None:
    assets = await page_assets(client)
    assert {path.rpartition("/")[2] for path in assets} == {"app.js", "style.css"}
    for path in assets:
        answer = await client.get(path)
        assert answer.status_code == 200, path
        assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert answer.headers["content-security-policy"]
        kind = "text/javascript" if path.endswith(".js") else "text/css"
        assert answer.headers["content-type"] == f"{kind}; charset=utf-8"


async def test_scripts_import_only_files_the_server_has(client: httpx.AsyncClient) -> None:
    app_js = next(path for path in await page_assets(client) if path.endswith("app.js"))
    folder = app_js.rpartition("/")[0]
    seen: set[str] = set()
    todo = ["app.js"]
    while todo:
        name = todo.pop()
        seen.add(name)
        script = await client.get(f"{folder}/{name}")
        assert script.status_code == 200, name
        assert "innerHTML" not in script.text
        assert "eval(" not in script.text
        imported = re.findall(r'from "\./([a-z]+\.js)"', script.text)
        todo += [found for found in imported if found not in seen]
    assert seen == {"app.js", "api.js", "job.js", "list.js", "format.js", "logview.js", "ansi.js"}


async def test_an_unchanged_page_or_file_answers_304(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    again = await client.get("/", headers={"If-None-Match": page.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    style = next(path for path in await page_assets(client) if path.endswith(".css"))
    first = await client.get(style)
    assert (
        await client.get(style, headers={"If-None-Match": first.headers["etag"]})
    ).status_code == 304


async def test_a_file_asked_under_another_release_is_served_but_not_kept(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get("/ui/static/0000000000000000/app.js")
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize(
    "path", ["/ui/static/x/index.html", "/ui/static/x/..%2Fapi.js", "/ui/static/x/nope.js"]
)
async def test_an_unknown_file_is_a_json_404(client: httpx.AsyncClient, path: str) -> None:
    assert_error(await client.get(path), 404, "not_found")


async def test_links_web_is_the_job_page_which_the_server_serves(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post("/jobs", headers=WRITE, json=trigger_body())
    job = created.json()
    assert job["links"]["web"] == f"{PUBLIC_URL}/ui/jobs/{job['id']}"
    page = await client.get(job["links"]["web"].removeprefix(PUBLIC_URL))
    assert page.status_code == 200
    assert page.text == (await client.get("/")).text
    # a page for any well-formed id: the page itself says when the job is not there
    assert (await client.get(f"/ui/jobs/{uuid.uuid4()}")).status_code == 200


async def test_a_malformed_job_id_in_a_page_path_is_a_json_400(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/ui/jobs/not-a-uuid"), 400, "invalid_job_id")


async def test_the_dashboard_is_not_part_of_the_api_document(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert [path for path in paths if path == "/" or path.startswith("/ui/")] == []
    # and not served under the API aliases
    assert (await client.get("/api/")).status_code == 404
