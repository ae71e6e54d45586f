"""A file the browser saves: CSV (UTF-8) or XLSX, named in ASCII and in full (Chinese)."""

from __future__ import annotations

from aiohttp import web

from server.pages.attendance_export import XLSX_TYPE, content_disposition


def download(body: bytes, kind: str, ascii_name: str, full_name: str) -> web.Response:
    """`kind` is "csv" or "xlsx"; the names are given without the extension."""
    response = web.Response(body=body, content_type="text/csv" if kind == "csv" else XLSX_TYPE)
    if kind == "csv":
        response.charset = "utf-8"
    response.headers["Content-Disposition"] = content_disposition(
        f"{ascii_name}.{kind}", f"{full_name}.{kind}"
    )
    response.headers["Cache-Control"] = "no-store"
    return response
