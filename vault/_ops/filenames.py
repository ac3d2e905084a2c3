"""A stored file name, made safe to write into a folder.

A document's file name comes from whoever sealed it: it may hold folder
parts (``../../.bashrc``, ``C:\\evil``), control characters, names a
system reserves, or nothing usable at all. :func:`safe_filename` keeps only
its last part, printable and bounded, so that the file it names is always
directly inside the folder it is written to.
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata

__all__ = ["safe_filename"]

MAX_NAME_BYTES = 200  # below every common file system's 255, with room to spare
_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"|?*]')
_RESERVED = re.compile(r"\A(con|prn|aux|nul|com\d|lpt\d)(\..*)?\Z", re.IGNORECASE)


def _fallback(doc_id: str, content_type: str | None) -> str:
    ext = mimetypes.guess_extension(content_type or "") or ".bin"
    return f"{doc_id}{ext}"


def safe_filename(name: str | None, doc_id: str, content_type: str | None = None) -> str:
    """The last part of ``name``, cleaned; the document id (with an
    extension from ``content_type``) when nothing usable is left."""
    if not name:
        return _fallback(doc_id, content_type)
    name = unicodedata.normalize("NFC", name)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name).strip().strip(".")  # no hidden file, no trailing dot
    if not name or _RESERVED.match(name):
        return _fallback(doc_id, content_type)
    while len(name.encode("utf-8")) > MAX_NAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        # Keep a short extension: shorten the stem.
        name = stem[:-1] + "." + ext if dot and 0 < len(ext) <= 16 and stem else name[:-1]
    return name
