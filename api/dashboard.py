"""The dashboard: one HTML page at ``/`` and its static files under ``/static/`` (docs/adr/0009-dashboard.md).

The page and its files hold no data, so they need no login; every ``/api`` call the page makes
does. The front-end libraries are not in the repository: ``make install`` runs ``npm ci`` in
``api/web/`` and copies their dist files to ``api/web/static/vendor/``.

Dashboard answers carry a strict Content-Security-Policy: scripts, styles and connections only
from this origin, no inline script, no eval, never inside a frame.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from litestar import MediaType, Response, get
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

WEB: Final = Path(__file__).parent / "web"
STATIC: Final = WEB / "static"
VENDOR: Final = STATIC / "vendor"
VENDOR_FILES: Final = ("htm-preact.js", "uPlot.js", "uPlot.css")  # what the Makefile copies

CONTENT_SECURITY_POLICY: Final = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",  # fetch and EventSource to this API only
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
PAGE_HEADERS: Final = {"Content-Security-Policy": CONTENT_SECURITY_POLICY}
STATIC_HEADERS: Final = {**PAGE_HEADERS, "Cache-Control": "no-cache"}  # revalidate: files change with releases

NOT_INSTALLED: Final = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>evbus dashboard</title></head>
<body><h1>The dashboard's front-end libraries are not installed</h1>
<p>Run <code>make install</code> (it needs <code>npm</code>): it installs them from
<code>api/web/package-lock.json</code> into <code>api/web/static/vendor/</code>.
The REST API works without them.</p></body></html>
"""


def installed() -> bool:
    """Whether ``make install`` has put the front-end libraries in place."""
    return all((VENDOR / name).is_file() for name in VENDOR_FILES)


@get(
    "/",
    operation_id="dashboard",
    include_in_schema=False,
    exclude_from_auth=True,
    media_type=MediaType.HTML,
    sync_to_thread=False,
)
def dashboard() -> Response[bytes]:
    """The single page; it shows the login form until the session cookie is set."""
    if not installed():
        return Response(NOT_INSTALLED.encode(), status_code=503, media_type=MediaType.HTML, headers=PAGE_HEADERS)
    return Response((WEB / "index.html").read_bytes(), media_type=MediaType.HTML, headers=PAGE_HEADERS)


def _static_headers(response: Response[Any]) -> Response[Any]:
    response.headers.update(STATIC_HEADERS)
    return response


static_files = create_static_files_router(
    path="/static",
    directories=[STATIC],
    name="dashboard-static",
    opt={"exclude_from_auth": True},
    after_request=_static_headers,
    include_in_schema=False,
)

ROUTES: list[ControllerRouterHandler] = [dashboard, static_files]
