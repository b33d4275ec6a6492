"""A PostgreSQL URL handled without ever showing its password: checked before
anything connects, shown as host, port and database alone, and scrubbed out of
every message libpq or psycopg builds from it.

libpq reads a URL's user information up to the first ``@`` or ``/``, so a
password holding a raw ``@`` or ``/`` is silently split (``u:pa/ss@h`` becomes
host ``u``, port ``pa``, database ``ss@h``), and its pieces would then show up
in a "could not connect to host" message. Such a URL is refused before libpq
sees it, with the fix (percent-encode them), and without the URL in the message.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from sim.errors import InputError, Problem

SCHEMES = ("postgresql://", "postgres://")
HIDDEN = "***"
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_PASSWORD_PARAMETER = re.compile(r"[?&]password=([^&#]*)")


def is_database_url(source: str) -> bool:
    return source.startswith(SCHEMES)


def check_database_url(url: str) -> dict[str, str]:
    """libpq's reading of ``url`` (its connection parameters); InputError, the URL not shown,
    when libpq would read it otherwise than written, or cannot read it."""
    rest = url.split("://", 1)[1]
    before_query = rest.split("?", 1)[0]
    if before_query.count("@") > 1 or ("@" in before_query and "/" in before_query.split("@", 1)[0]):
        raise _refused("a password or user name holding a raw '@' or '/' is read by libpq as a host and "
                       "database; write them percent-encoded (%40, %2F)")
    if _BAD_PERCENT.search(url):
        raise _refused("a '%' that does not start a percent-encoded byte; write a password's '%' as %25")
    try:
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        raise InputError(Problem("reading a PostgreSQL database needs psycopg: pip install -e '.[logs]'")) from None
    try:
        return {k: str(v) for k, v in conninfo_to_dict(url).items()}
    except Exception as exc:  # noqa: BLE001 - psycopg.ProgrammingError, or any other refusal of libpq's
        # libpq quotes the part it could not read, which may be a piece of a password whose raw '&'
        # or '=' cut it short: its words are shown only for a URL that holds no password at all.
        words = "" if secrets_in(url) else f" ({scrub(str(exc).strip().splitlines()[0], url)})"
        raise _refused(f"libpq cannot read it{words}") from None


def printable(url: str) -> str:
    """``postgresql://host:port/database`` (no user, password or options), or a plain
    description when the URL cannot be read safely."""
    try:
        parts = check_database_url(url)
    except InputError:
        return "a PostgreSQL URL (not shown: it may hold a password)"
    host = parts.get("host") or parts.get("hostaddr") or "localhost"
    port = f":{parts['port']}" if parts.get("port") else ""
    return scrub(f"postgresql://{host}{port}/{parts.get('dbname', '')}", url)


def secrets_in(url: str) -> set[str]:
    """Every form in which ``url``'s password can appear in a message: as written, decoded
    and re-encoded, from the user information and from a ``password=`` parameter."""
    found: set[str] = set()
    rest = url.split("://", 1)[-1]
    if "@" in rest:
        user_info = rest.rsplit("@", 1)[0]
        if ":" in user_info:
            found.add(user_info.split(":", 1)[1])
    found.update(_PASSWORD_PARAMETER.findall(url))
    try:
        from psycopg.conninfo import conninfo_to_dict

        password = conninfo_to_dict(url).get("password")
        if password:
            found.add(str(password))
    except Exception:  # noqa: BLE001 - libpq cannot read it: the forms above are all there is
        pass
    forms = set()
    for secret in found:
        for form in (secret, _decoded(secret), quote(secret, safe=""), quote(_decoded(secret), safe="")):
            if form:
                forms.add(form)
    return forms


def scrub(message: str, url: str) -> str:
    """``message`` with ``url`` and every form of its password replaced by ``***`` (longest first,
    so a form inside another is not left half-visible)."""
    message = message.replace(url, f"<{HIDDEN}>")
    for secret in sorted(secrets_in(url), key=len, reverse=True):
        message = message.replace(secret, HIDDEN)
    return message


def _decoded(text: str) -> str:
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError:
        return text


def _refused(why: str) -> InputError:
    return InputError(Problem(f"the database URL cannot be used as written: {why}; the URL is not shown, since "
                              "it may hold a password"))
