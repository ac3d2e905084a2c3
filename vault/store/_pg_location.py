"""A PostgreSQL location read as libpq reads it, and the passwords it holds
kept out of every message (docs/DEPLOYMENT.md §3).

libpq splits a ``postgresql://`` URI by its own rules (fe-connect.c,
``conninfo_uri_parse_options``), not by RFC 3986's:

* there is a user part only if an ``@`` comes before any ``/``; it ends at
  that *first* ``@``, and the password runs from its first ``:`` to there;
* the host then ends at the next ``:``, ``/``, ``?`` or ``,``; the port at
  the next ``/``, ``?`` or ``,``; the database at the next ``?``;
* ``%XX`` is decoded in each part; ``?`` and ``#`` are ordinary characters
  before the first ``@``.

So a password written with a raw ``@`` is cut there, the rest taken for the
host ("correct@horse-battery-staple" connected to
``horse-battery-staple@db...``); one with a raw ``/`` leaves no user part
at all, the user name taken for the host and the password up to the ``/``
for the port; and libpq's message then quotes that host or port. A raw
``?`` or ``#`` libpq reads as meant, but nothing else does (a URL parser,
a reader of the location): it ends the user part there. A location is
therefore refused before any connection (:func:`check_location`) when its
password holds a raw ``?`` or ``#``, when an ``@`` stands anywhere libpq
does not end the user part with it but in a query parameter's value, or
when its port is not a number -- and the refusal quotes none of it.

Behind that, a message built from a driver's error is not shown when it
holds three characters in a row of a password this process was given (in
a location, or in ``PGPASSWORD``): :func:`quotes_a_secret`. Not masked in
place: which words of the driver's own text came out masked would tell
which pieces of the password they share.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterable

import psycopg
from psycopg import conninfo as _conninfo

from vault.errors import UsageError

__all__ = ["ENCODE_HINT", "FRAGMENT", "SCHEMES", "check_location", "quotes_a_secret",
           "remember_secrets", "secrets_of"]

SCHEMES = ("postgresql://", "postgres://")

#: a driver's message holding this many characters in a row of a password
#: is not shown (fewer tell little, and would withhold most messages)
FRAGMENT = 3

ENCODE_HINT = ("percent-encode the user name and the password in the location ('@' as %40, "
               "'/' as %2F, '?' as %3F, '#' as %23, '%' as %25), or keep the password in "
               "~/.pgpass (docs/DEPLOYMENT.md §3)")

_PORT = re.compile(r"[0-9]*(?:,[0-9]*)*")
_SECRET_KEYS = ("password", "sslpassword")


def _user_part(rest: str) -> tuple[str, str]:
    """What follows ``scheme://``, split as libpq splits it: the user part
    (empty: none) and the rest, from the host on."""
    stop = next((i for i, c in enumerate(rest) if c in "@/"), len(rest))
    return (rest[:stop], rest[stop + 1:]) if rest[stop:stop + 1] == "@" else ("", rest)


def check_location(location: str) -> None:
    """Refuse (:class:`UsageError`) a URI libpq would read otherwise than a
    person means it (see the module doc), naming nothing of it."""
    if not location.startswith(SCHEMES):
        return
    user_part, after = _user_part(location.partition("://")[2])
    password = user_part.partition(":")[2]
    where, _, query = after.partition("?")
    misread = any(c in password for c in "?#") or "@" in where or any(
        "@" in pair.partition("=")[0] for pair in query.split("&"))
    if misread:
        raise UsageError("the database location holds '@', '/', '?' or '#' unencoded in its "
                         "user name or password (or an '@' past them): PostgreSQL would read "
                         "part of it as the host, the port or the database", hint=ENCODE_HINT)
    with contextlib.suppress(psycopg.ProgrammingError):  # unreadable: redact says so
        port = _conninfo.conninfo_to_dict(location).get("port")
        if port is not None and not _PORT.fullmatch(str(port)):
            raise UsageError("the database location's port is not a number",
                             hint="write it as postgresql://[user[:password]@]host[:port]/"
                                  f"database; {ENCODE_HINT}")


def secrets_of(location: str) -> frozenset[str]:
    """The passwords ``location`` holds, as libpq reads them and as written
    (percent-encoded), of a client key's too (``sslpassword``)."""
    found: set[str] = set()
    with contextlib.suppress(psycopg.ProgrammingError):
        params = _conninfo.conninfo_to_dict(location)
        found.update(str(params[k]) for k in _SECRET_KEYS if params.get(k))
    if location.startswith(SCHEMES):
        rest = location.partition("://")[2]
        found.add(_user_part(rest)[0].partition(":")[2])
        # and as a person means it: from the first ':' to the last '@'
        # before the query (a location check_location refuses)
        head = rest.split("?", 1)[0]
        found.add(head[:max(head.rfind("@"), 0)].partition(":")[2])
        found.update(re.findall(r"[?&](?:ssl)?password=([^&]*)", rest))
    return frozenset(s for s in found if s)


# The passwords of every location this process was given: a message is
# built from a driver's error far from the location it connected with.
_known: set[str] = set()
_known_lock = threading.Lock()


def remember_secrets(secrets: Iterable[str]) -> None:
    """Keep ``secrets`` out of every message made of a driver's error
    from now on (:func:`quotes_a_secret`)."""
    with _known_lock:
        _known.update(secrets)


def quotes_a_secret(texts: Iterable[str]) -> bool:
    """Does any of ``texts`` hold :data:`FRAGMENT` characters in a row of a
    password given to this process (or of ``PGPASSWORD``, which libpq takes
    when the location has none)?"""
    with _known_lock:
        secrets = [*_known, os.environ.get("PGPASSWORD", "")]
    pieces = {s[i:i + FRAGMENT] for s in secrets for i in range(len(s) - FRAGMENT + 1)}
    return any(piece in text for text in texts for piece in pieces)
