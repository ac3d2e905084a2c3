"""The JSON listing of a large vault, made from the index's own text
(``vault ls --json``, docs/DESIGN.md §8).

A listing of 100,000 documents cannot afford to decode and re-encode every
label statement (some 10 µs a document in Python). It does not need to: the
index keeps each statement as canonical JSON (keys sorted, no white space,
UTF-8: ``vault.store.index``), whose members are, in this order::

    {"action":…,"doc":…,"label":{…},"policy":…,"sealed_at":…,…}

In canonical JSON every ``"`` inside a string is written ``\\"``, so the
byte sequences ``,"label":{``, ``},"policy":`` and ``,"sealed_at":`` can
only be the statement's own structure, never part of a value, and a label
holds no nested object. :func:`frame` cuts out the label object and the
policy value by searching for them; only the label (a fifth of the text) is
decoded, to decide and to read who classified it. An entry is then written
by joining texts. A row that does not have this shape is decoded in full
instead, like :meth:`vault.Vault.ls` does; a row that does not decode is
left out, as :meth:`~vault.Vault.ls` leaves it out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from json.encoder import encode_basestring
from typing import Any

__all__ = ["listing_json"]

_LABEL, _POLICY, _SEALED_AT = ',"label":{', '},"policy":', ',"sealed_at":'
_POLICY_VALUE = re.compile(r'null|"[0-9a-f]{64}"')
# json.loads without its per-call layers (canonical text has no white space):
# the decoder's own scanner (not in the type stubs).
_scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _object(text: str) -> Any:
    value, end = _scan(text, 0)
    if end != len(text):
        raise ValueError("trailing data")
    return value


def frame(text: str) -> tuple[str, str] | None:
    """``(label object text, policy value text)`` of a canonical statement."""
    start = text.find(_LABEL)
    if start < 0:
        return None
    end = text.find(_POLICY, start)
    stop = text.find(_SEALED_AT, end)
    if end < 0 or stop < 0:
        return None
    return text[start + len(_LABEL) - 1 : end + 1], text[end + len(_POLICY) : stop]


def _entry(doc_id: str, label_text: str, classified_by: Any, policy_text: str,
           sealed_at: str, sealed_by: str, size: int) -> str:
    # DocumentInfo.to_dict() of a listed document, keys sorted, compact.
    by = "null" if classified_by is None else encode_basestring(classified_by)
    return (f'{{"classified_by":{by},"content_type":null,"filename":null,'
            f'"id":{encode_basestring(doc_id)},"label":{label_text},"plaintext_size":null,'
            f'"policy":{policy_text},"sealed_at":{encode_basestring(sealed_at)},'
            f'"sealed_by":{encode_basestring(sealed_by)},"sha256":null,"size":{int(size)},'
            f'"title":null}}')


def _slow(doc_id: str, text: str, sealed_at: str, sealed_by: str, size: int,
          allowed: Callable[[Mapping[str, Any]], bool]) -> str | None:
    st = json.loads(text)
    label = st["label"]
    if not allowed(label):
        return None
    return json.dumps({
        "id": doc_id, "label": label, "sealed_at": sealed_at, "sealed_by": sealed_by,
        "size": size, "title": None, "filename": None, "content_type": None,
        "plaintext_size": None, "sha256": None, "classified_by": label.get("classified_by"),
        "policy": st.get("policy")}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def listing_json(rows: Iterable[tuple[str, str, str, str, int]],
                 allowed: Callable[[Mapping[str, Any]], bool]) -> tuple[str, int]:
    """The JSON array of the rows (``Index.listing()``) whose label
    ``allowed`` accepts, and how many there are."""
    entries: list[str] = []
    for doc_id, text, sealed_at, sealed_by, size in rows:
        try:
            parts = frame(text) if isinstance(text, str) else None
            if parts is None:
                entry = _slow(doc_id, text, sealed_at, sealed_by, size, allowed)
                if entry is not None:
                    entries.append(entry)
                continue
            if not _POLICY_VALUE.fullmatch(parts[1]):
                raise ValueError("not a policy hash")
            label = _object(parts[0])
            if allowed(label):
                entries.append(_entry(doc_id, parts[0], label.get("classified_by"), parts[1],
                                      sealed_at, sealed_by, size))
        except (ValueError, TypeError, KeyError, AttributeError):
            continue  # a damaged row
    return "[" + ",".join(entries) + "]", len(entries)
