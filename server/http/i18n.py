"""Translations: gettext catalogs (web/locale/*.po) read at start, chosen per request."""

from __future__ import annotations

import gettext as gettext_module
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

from aiohttp import web
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from server.keys import PRINCIPAL_KEY, SETTINGS_KEY, TRANSLATIONS_KEY
from server.settings import SUPPORTED_LOCALES

LOCALE_DIR = Path(__file__).resolve().parents[2] / "web" / "locale"
LANG_COOKIE = "hetang_lang"

Translations = dict[str, gettext_module.NullTranslations]


def read_catalog(locale: str, locale_dir: Path = LOCALE_DIR) -> Catalog | None:
    """A locale's messages: `messages.po` and any other `*.po` beside it (one file per area of
    the product), merged; None when the locale has none."""
    files = sorted(
        (locale_dir / locale / "LC_MESSAGES").glob("*.po"),
        key=lambda path: (path.name != "messages.po", path.name),
    )
    merged: Catalog | None = None
    for po_path in files:
        with po_path.open("rb") as handle:
            catalog = read_po(handle, locale=locale)
        if merged is None:
            merged = catalog
            continue
        for message in catalog:
            if message.id:
                merged[message.id] = message
    return merged


def load_translations(locale_dir: Path = LOCALE_DIR) -> Translations:
    """Read every supported locale's catalog; English is the source language."""
    result: Translations = {}
    for locale in SUPPORTED_LOCALES:
        catalog = read_catalog(locale, locale_dir)
        if catalog is None:
            result[locale] = gettext_module.NullTranslations()
            continue
        buffer = BytesIO()
        write_mo(buffer, catalog)
        buffer.seek(0)
        result[locale] = gettext_module.GNUTranslations(buffer)
    return result


def request_locale(request: web.Request) -> str:
    """The cookie's choice; else, for a program calling the JSON API with a token, an explicit
    Accept-Language; else the configured default (pages, and the files a signed-in page
    downloads from the API, stay in it until the user switches in the header)."""
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in SUPPORTED_LOCALES:
        return chosen
    principal = request.get(PRINCIPAL_KEY)
    if not request.path.startswith("/api/") or getattr(principal, "via", None) == "cookie":
        return request.app[SETTINGS_KEY].locale
    accept = request.headers.get("Accept-Language", "").strip().lower()
    if accept.startswith("en"):
        return "en"
    if accept.startswith("zh"):
        return "zh_CN"
    return request.app[SETTINGS_KEY].locale


def translate_for(request: web.Request) -> Callable[[str], str]:
    """The gettext function for this request's locale."""
    translations = request.app.get(TRANSLATIONS_KEY)
    if translations is None:
        return lambda message: message
    return translations[request_locale(request)].gettext


def list_joiner(request: web.Request) -> str:
    """What joins the items of a list in a sentence or a cell: 、 in Chinese, a comma else."""
    return "、" if request_locale(request) == "zh_CN" else ", "
