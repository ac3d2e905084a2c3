"""A stored file name, made safe to write into a folder.

A document's file name comes from whoever sealed it: it may hold folder
parts (``../../.bashrc``, ``C:\\evil``), control characters, names a
system reserves, or nothing usable at all. :func:`safe_filename` keeps only
its last part, printable and bounded, so that the file it names is always
directly inside the folder it is written to.

A document's content type, when its sealer gives none, comes from its
file name's extension by the table below, the same on every machine:
Python's ``mimetypes`` reads the system's own tables (``/etc/mime.types``
here, the registry on Windows), so one file would be typed differently
on two workstations, and reading them took 0.9 MB of every sealing
process (docs/PERFORMANCE.md §4.2).
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["content_type_of", "safe_filename"]

# The documents an office seals, by extension (IANA media types; the Office
# Open XML and OpenDocument ones as those formats register them).
_OOXML = "application/vnd.openxmlformats-officedocument."
_ODF = "application/vnd.oasis.opendocument."
_TYPES: dict[str, str] = {
    ".txt": "text/plain", ".csv": "text/csv", ".md": "text/markdown", ".html": "text/html",
    ".htm": "text/html", ".xml": "application/xml", ".json": "application/json",
    ".rtf": "application/rtf", ".pdf": "application/pdf",
    ".docx": _OOXML + "wordprocessingml.document",
    ".docm": "application/vnd.ms-word.document.macroEnabled.12",
    ".dotx": _OOXML + "wordprocessingml.template",
    ".xlsx": _OOXML + "spreadsheetml.sheet",
    ".xlsm": "application/vnd.ms-excel.sheet.macroEnabled.12",
    ".xltx": _OOXML + "spreadsheetml.template",
    ".pptx": _OOXML + "presentationml.presentation",
    ".pptm": "application/vnd.ms-powerpoint.presentation.macroEnabled.12",
    ".potx": _OOXML + "presentationml.template",
    ".ppsx": _OOXML + "presentationml.slideshow",
    ".doc": "application/msword", ".xls": "application/vnd.ms-excel",
    ".ppt": "application/vnd.ms-powerpoint",
    ".odt": _ODF + "text", ".ods": _ODF + "spreadsheet", ".odp": _ODF + "presentation",
    ".eml": "message/rfc822", ".msg": "application/vnd.ms-outlook",
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
    ".tif": "image/tiff", ".tiff": "image/tiff", ".svg": "image/svg+xml",
    ".webp": "image/webp", ".zip": "application/zip", ".gz": "application/gzip",
    ".tar": "application/x-tar", ".7z": "application/x-7z-compressed",
    ".mp3": "audio/mpeg", ".wav": "audio/wav", ".mp4": "video/mp4",
}
# The extension a type's file gets when its own name is unusable: the first listed.
_EXTENSIONS: dict[str, str] = {}
for _ext, _type in _TYPES.items():
    _EXTENSIONS.setdefault(_type, _ext)


def content_type_of(name: str) -> str | None:
    """The content type of a file named ``name``, by its extension (any
    case), or None for one the table does not know."""
    _, dot, ext = name.rpartition(".")
    return _TYPES.get("." + ext.lower()) if dot else None

MAX_NAME_BYTES = 200  # below every common file system's 255, with room to spare
_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"|?*]')
_RESERVED = re.compile(r"\A(con|prn|aux|nul|com\d|lpt\d)(\..*)?\Z", re.IGNORECASE)


def _fallback(doc_id: str, content_type: str | None) -> str:
    ext = _EXTENSIONS.get(content_type or "", ".bin")
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
