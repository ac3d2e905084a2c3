"""The age v1 header: stanzas, canonical base64, line rules and the MAC.

Everything here follows docs/FORMAT.md §2-§3 (C2SP age.md, "Header"). The
parser accepts exactly one encoding of each header, so that
``parse(b).encode() == b`` for every ``b`` that parses: anything that is not
canonical (base64, line wrapping, spaces, line endings) is a HeaderError.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac

from vault._primitives import B64_BYTES as _B64_BYTES
from vault._primitives import b64decode, b64encode, hkdf
from vault.errors import HeaderError, HMACError

__all__ = [
    "MAX_HEADER_SIZE",
    "Header",
    "Stanza",
    "b64decode",
    "b64encode",
    "hkdf",
    "read_header",
    "recipient_arg",
]

VERSION_LINE = b"age-encryption.org/v1\n"
_VERSION_PREFIX = b"age-encryption.org/"
_STANZA_PREFIX = b"-> "
_MAC_PREFIX = b"---"
_COLUMNS = 64
# Every byte an argument may not hold (anything but VCHAR, 0x21-0x7E):
# bytes.translate deletes the allowed ones in C, where a Python loop over
# a hybrid stanza's 1,500-character argument cost a quarter of a millisecond.
_VCHAR = bytes(range(0x21, 0x7F))
_MAC_SIZE = 32
FILE_KEY_SIZE = 16

# docs/FORMAT.md §2.4: a hostile header must not make us buffer without end.
MAX_HEADER_SIZE = 1 << 20

def _is_vchar_word(s: str) -> bool:
    # Non-empty, and only 0x21-0x7E: ASCII, printable (no control character
    # nor DEL), and no space.
    return bool(s) and s.isascii() and s.isprintable() and " " not in s


@dataclass(frozen=True)
class Stanza:
    """One recipient stanza: ``-> type args…`` followed by a wrapped body.

    ``type`` is the first argument on the wire (``X25519``, ``scrypt``, or a
    caller's own type, preferably a domain name such as ``example.com/x``).
    """

    type: str
    args: list[str] = field(default_factory=list)
    body: bytes = b""
    # The wire form, computed once: a header is encoded several times (its
    # MAC, the file, digests) and stanzas are not changed after creation.
    _encoded: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _is_vchar_word(self.type) or not all(
            isinstance(a, str) and _is_vchar_word(a) for a in self.args
        ):
            raise ValueError(
                "stanza type and arguments must be non-empty strings of printable "
                "ASCII without spaces"
            )
        if not isinstance(self.body, bytes):
            raise TypeError("stanza body must be bytes")

    def encode(self) -> bytes:
        """The stanza's exact wire form (docs/FORMAT.md §2.2)."""
        if self._encoded is not None:
            return self._encoded
        line = " ".join([self.type, *self.args])
        body = b64encode(self.body)
        lines = [body[i : i + _COLUMNS] for i in range(0, len(body), _COLUMNS)]
        if not lines or len(lines[-1]) == _COLUMNS:
            lines.append("")  # a body always ends with a short, maybe empty, line
        encoded = ("-> " + line + "\n" + "".join(s + "\n" for s in lines)).encode("ascii")
        object.__setattr__(self, "_encoded", encoded)
        return encoded

    def __repr__(self) -> str:
        # Bodies are wrapped keys: show their size, never their bytes.
        return f"Stanza(type={self.type!r}, args={self.args!r}, body=<{len(self.body)} bytes>)"


@dataclass(frozen=True)
class Header:
    """A parsed or freshly built age v1 header.

    A header returned by :func:`read_header` is *unverified*: its MAC is
    checked only once a file key is known (``vault.age.unwrap_file_key``).
    """

    stanzas: list[Stanza]
    mac: bytes

    def __post_init__(self) -> None:
        if len(self.mac) != _MAC_SIZE:
            raise ValueError("a header MAC is 32 bytes")

    @classmethod
    def seal(cls, stanzas: Sequence[Stanza], file_key: bytes) -> Header:
        """Build a header for ``stanzas`` with its MAC under ``file_key``."""
        stanzas = list(stanzas)
        if not stanzas:
            raise ValueError("a header needs at least one stanza (give at least one recipient)")
        return cls(stanzas, _compute_mac(_mac_input(stanzas), file_key))

    def encode(self) -> bytes:
        """The exact header bytes, including the final MAC line."""
        return _mac_input(self.stanzas) + b" " + b64encode(self.mac).encode("ascii") + b"\n"

    def verify_mac(self, file_key: bytes) -> None:
        """Raise HMACError unless the MAC matches ``file_key`` (constant time)."""
        try:
            _mac(file_key, _mac_input(self.stanzas)).verify(self.mac)
        except InvalidSignature:
            raise HMACError("header MAC does not verify: the file was modified") from None


def _mac_input(stanzas: Sequence[Stanza]) -> bytes:
    # docs/FORMAT.md §2.3: the MAC covers everything up to and including "---".
    return VERSION_LINE + b"".join(s.encode() for s in stanzas) + _MAC_PREFIX


def _mac(file_key: bytes, data: bytes) -> hmac.HMAC:
    if len(file_key) != FILE_KEY_SIZE:
        raise ValueError("an age file key is 16 bytes")
    mac = hmac.HMAC(hkdf(file_key, b"", b"header"), hashes.SHA256())
    mac.update(data)
    return mac


def _compute_mac(data: bytes, file_key: bytes) -> bytes:
    return _mac(file_key, data).finalize()


class _LineReader:
    """Reads LF-terminated lines, counting bytes against MAX_HEADER_SIZE."""

    def __init__(self, src: BinaryIO, used: int = 0) -> None:
        self._src = src
        self.used = used

    def line(self) -> bytes:
        limit = MAX_HEADER_SIZE - self.used
        if limit <= 0:
            raise HeaderError("header too large")
        line = self._src.readline(limit)
        self.used += len(line)
        if not line:
            raise HeaderError("truncated header")
        if not line.endswith(b"\n"):
            raise HeaderError("header too large" if len(line) >= limit else "truncated header")
        return line[:-1]


def read_header(src: BinaryIO) -> Header:
    """Parse an age v1 header, consuming exactly its bytes from ``src``.

    The returned header is unverified (its MAC needs the file key). Raises
    HeaderError for anything but the one canonical encoding.
    """
    _read_version_line(src)
    lines = _LineReader(src, used=len(VERSION_LINE))
    stanzas: list[Stanza] = []
    while True:
        line = lines.line()
        if line.startswith(_STANZA_PREFIX):
            stanzas.append(_parse_stanza(line, lines))
        elif line.startswith(_MAC_PREFIX):
            if not stanzas:
                raise HeaderError("header has no stanzas")
            return Header(stanzas, _parse_mac(line))
        else:
            raise HeaderError("malformed header line")


def _read_version_line(src: BinaryIO) -> None:
    first = src.readline(len(VERSION_LINE))  # never more than the v1 line
    if first == VERSION_LINE:
        return
    if not first:
        raise HeaderError("not an age file (it is empty)")
    if VERSION_LINE.startswith(first):
        raise HeaderError("truncated header")
    if first.startswith(_VERSION_PREFIX):
        raise HeaderError("unsupported age format version")
    raise HeaderError("not an age file")


def _parse_stanza(first: bytes, lines: _LineReader) -> Stanza:
    words = first[len(_STANZA_PREFIX) :].split(b" ")
    if not all(w and not w.translate(None, _VCHAR) for w in words):
        raise HeaderError("malformed stanza arguments")
    chunks: list[bytes] = []
    while True:
        line = lines.line()
        if len(line) > _COLUMNS or line.translate(None, _B64_BYTES):
            raise HeaderError("malformed stanza body line")
        chunks.append(line)
        if len(line) < _COLUMNS:
            break
    try:
        body = b64decode(b"".join(chunks))
    except ValueError:
        raise HeaderError("stanza body is not canonical base64") from None
    text = [w.decode("ascii") for w in words]
    stanza = Stanza(text[0], text[1:], body)
    # Only the canonical encoding parses, so the bytes read are the stanza's
    # wire form: kept, rather than encoded again for the header's MAC.
    object.__setattr__(stanza, "_encoded", b"\n".join([first, *chunks, b""]))
    return stanza


def _parse_mac(line: bytes) -> bytes:
    if not line.startswith(b"--- "):
        raise HeaderError("malformed MAC line")
    try:
        mac = b64decode(line[4:])
    except ValueError:
        raise HeaderError("MAC is not canonical base64") from None
    if len(mac) != _MAC_SIZE:
        raise HeaderError("MAC has the wrong length")
    return mac


def recipient_arg(stanza: Stanza, what: str, size: int, body_size: int) -> bytes:
    """The one argument of a recipient stanza (``what`` it holds, ``size``
    bytes), decoded, with a body of ``body_size`` bytes. A malformed stanza
    of a recipient's own type is a header error whoever it addresses, and
    every length is checked before any decryption (partitioning oracles)."""
    kind = stanza.type
    if len(stanza.args) != 1:
        raise HeaderError(f"{kind} stanza must have exactly one argument")
    try:
        arg = b64decode(stanza.args[0])
    except ValueError:
        raise HeaderError(f"{kind} {what} is not canonical base64") from None
    if len(arg) != size:
        raise HeaderError(f"{kind} {what} has the wrong length")
    if len(stanza.body) != body_size:
        raise HeaderError(f"{kind} stanza body has the wrong length")
    return arg
