"""Two languages, Simplified Chinese and English: the catalogues, whose language a reader gets,
and dates, numbers and money in the reader's locale.

The catalogues are gettext `.po` files in `api/locale/<locale>/LC_MESSAGES/`,
read with Babel when first needed, so `make run` and a non-editable install
need no compile step and a translator's edit needs only a restart. English
is the source language: its catalogue repeats each message, so a test can
tell a message nobody translated from one that is the same in both.

The language is per request, kept in a context variable: set from the
browser (the `lang` cookie of the console's switch, else Accept-Language,
else the site default) by `LanguageMiddleware`, and from the person's
profile once the console knows who is asking (`api.console.common`). The
`dialer`, `recording`, `transcribe` and `qa_scoring` packages know nothing
of it: they return codes and parameters, and `api` renders them.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime, tzinfo
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal
from babel.support import Translations
from starlette.types import ASGIApp, Receive, Scope, Send

EN = "en"
ZH = "zh_CN"
#: Every language the console and the API speak, each named in itself for the switch.
LANGUAGES: dict[str, str] = {ZH: "中文", EN: "English"}
COOKIE = "dialguard_lang"

_current: ContextVar[str] = ContextVar("dialguard_language", default=EN)


def locale_dir() -> Any:
    return resources.files("api").joinpath("locale")


@cache
def translations(language: str) -> Translations:
    """The catalogue of `language`, read from its `.po` (fuzzy entries count as untranslated)."""
    po = locale_dir().joinpath(language, "LC_MESSAGES", "messages.po")
    with po.open("rb") as source:
        catalog = read_po(source, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled)


def known(language: str | None) -> str | None:
    """`language` as one of LANGUAGES (zh, zh-CN, zh-Hans, en-GB...), or None if neither."""
    if not language:
        return None
    tag = language.strip().replace("-", "_").lower()
    if tag == "zh" or tag.startswith("zh_"):
        return ZH  # Traditional readers read Simplified better than English
    if tag == "en" or tag.startswith("en_"):
        return EN
    return None


def from_accept_language(header: str | None) -> str | None:
    """The first language of the header, by its q-values, that we speak; None if none."""
    if not header:
        return None
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")[:32]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((-quality, position, tag.strip()))
    for negative_quality, _, tag in sorted(ranked):
        found = known(tag)
        if found is not None and negative_quality < 0:
            return found
    return None


def site_default(language: str | None, policy_preset: str) -> str:
    """DIALGUARD_LANGUAGE if set; else Chinese for a site on China's call policy, else English."""
    chosen = known(language)
    if chosen is not None:
        return chosen
    return ZH if policy_preset.startswith("cn-") else EN


#: The shell's locale variables in POSIX order: the first one set decides.
SHELL_LOCALE = ("LC_ALL", "LC_MESSAGES", "LANG")


def from_shell(environ: Mapping[str, str]) -> str | None:
    """The language of an operator's shell (zh_CN.UTF-8, en_US...), or None: the first of
    LC_ALL, LC_MESSAGES and LANG that is set decides, and C, POSIX or a language we do not
    speak names none."""
    for name in SHELL_LOCALE:
        value = environ.get(name, "").strip()
        if value:
            return known(value.partition(".")[0].partition("@")[0])
    return None


def for_operator(environ: Mapping[str, str], site: str) -> str:
    """The `dialguard` command's language: the operator's shell, else the site default."""
    return from_shell(environ) or known(site) or EN


def choose(
    profile: str | None, cookie: str | None, accept_language: str | None, default: str
) -> str:
    """The person's profile, else the console's switch, else the browser, else the site."""
    return (
        known(profile)
        or known(cookie)
        or from_accept_language(accept_language)
        or known(default)
        or EN
    )


def use(language: str) -> None:
    """Speak `language` for the rest of this request (and what it runs in its threads)."""
    _current.set(known(language) or EN)


@contextmanager
def speaking(language: str) -> Iterator[None]:
    """Speak `language` inside the block (a CLI command), then what was spoken before."""
    token = _current.set(known(language) or EN)
    try:
        yield
    finally:
        _current.reset(token)


def current() -> str:
    return _current.get()


def gettext(message: str) -> str:
    return str(translations(_current.get()).ugettext(message))


def ngettext(singular: str, plural: str, n: int) -> str:
    return str(translations(_current.get()).ungettext(singular, plural, n))


_ = gettext


def N_(message: str) -> str:  # noqa: N802 - gettext's name for "mark, translate later"
    """Mark a message for the catalogue where it is defined; `gettext` it where it is shown."""
    return message


def translate(message: str, **params: Any) -> str:
    """`message` in the current language with `%(name)s` parameters filled in."""
    text = gettext(message)
    return text % params if params else text


# --- formats ---------------------------------------------------------------------------------


def when(value: datetime | None, zone: tzinfo | None = None) -> str:
    """A date and time to the minute: 2026-12-06 14:05 in English (as ever), 2026年12月6日 14:05."""
    if value is None:
        return ""
    if zone is not None:
        value = value.astimezone(zone)
    if _current.get() == ZH:
        return str(format_datetime(value, "y年M月d日 HH:mm", tzinfo=value.tzinfo, locale=ZH))
    return f"{value:%Y-%m-%d %H:%M}"


def day(value: date | datetime | None) -> str:
    if value is None:
        return ""
    if _current.get() == ZH:
        return str(format_date(value, "y年M月d日", locale=ZH))
    return f"{value:%Y-%m-%d}"


def number(value: int | float | Decimal, digits: int = 0) -> str:
    """A count or measure with the locale's grouping; `digits` fixed decimals."""
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return str(format_decimal(value, format=pattern, locale=_current.get()))


def money(value: int | float | Decimal, currency: str = "CNY") -> str:
    """¥12,345.00 for a Chinese reader, CN¥12,345.00 for an English one."""
    return str(format_currency(value, currency, locale=_current.get()))


def language_name(language: str) -> str:
    return str(Locale.parse(language).get_display_name(_current.get()))


# --- the request's language ------------------------------------------------------------------


class LanguageMiddleware:
    """Sets the request's language from the switch's cookie, Accept-Language and the site.

    Plain ASGI (not BaseHTTPMiddleware) so the context variable it sets is
    the one the handlers, their threads and the error handlers see.
    """

    def __init__(self, app: ASGIApp, default: str = EN) -> None:
        self.app = app
        self.default = default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            headers = dict(scope.get("headers") or [])
            accept = headers.get(b"accept-language", b"").decode("latin-1")
            cookie = _cookie(headers.get(b"cookie", b"").decode("latin-1"), COOKIE)
            language = choose(None, cookie, accept, self.default)
            use(language)
            scope.setdefault("state", {})["language"] = language
        await self.app(scope, receive, send)


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value.strip('"')
    return None
