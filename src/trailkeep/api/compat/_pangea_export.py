"""Pangea's downloads: the capability URL of a frozen result set, and the gzip file it serves.

``download_results`` answers a ``dest_url`` of the form
``/pangea/download/{job}/{filename}?expires=...&sig=...`` under the server's own URL:

- ``job`` is the result set a search (``result_id``) or an export (``request_id``) froze:
  the tenant, what it selects (times already absolute), the log size it is frozen at, the
  published size, its count, ``verbose`` and the file's format, as base64url(zlib(JSON));
- ``sig`` is HMAC-SHA256 (all 256 bits) of the job and ``expires`` under a key of its own,
  derived from the checkpoint signing seed: the scheme of the native export links
  (``service.exports``), with their lifetime (``TRAILKEEP_EXPORT_LINK_TTL``).

So the URL works without a token, on every server process sharing the signing key, and
nobody can guess one, alter one to name another tenant, selection or size, or use one after it
expires. The file is written when it is fetched, page by page in the result set's order, and
holds exactly the events the result set holds (fields erased since read as erased).

The body is gzip, served as ``application/gzip`` **without** ``Content-Encoding``: the SDK's
``download_file`` hands the bytes over as they arrive, and an HTTP client un-gzips a body that
declares a content encoding (``shared/compat/pangea.md`` §3).
"""

from __future__ import annotations

import binascii
import csv
import hashlib
import hmac
import io
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

import orjson

from trailkeep.errors import AuthenticationError, InvalidInputError
from trailkeep.merkle import Signer
from trailkeep.model.pangea import canonical_json
from trailkeep.model.timeparse import format_time
from trailkeep.service.sealed import b64, unb64

__all__ = [
    "CSV_COLUMNS",
    "FORMATS",
    "DownloadFormat",
    "DownloadLink",
    "DownloadLinks",
    "file_chunks",
    "filename",
]

DownloadFormat = Literal["csv", "json"]
#: The formats ``export`` and ``download_results`` accept (the SDK's ``DownloadFormat``).
FORMATS: Final[tuple[DownloadFormat, ...]] = ("csv", "json")
#: CSV columns: the envelope's ``received_at``, the standard schema's fields, any other
#: (custom) fields of the event as canonical JSON, the client's signature and key, then the
#: tree: the event's hash (leaf), whether it is published, its ``leaf_index`` when it is, and,
#: when the result set is verbose, its membership proof and the root hash that proof leads to.
CSV_COLUMNS: Final = (
    "received_at", "timestamp", "actor", "action", "message", "source", "status", "target",
    "tenant_id", "old", "new", "other", "signature", "public_key", "hash", "published",
    "leaf_index", "membership_proof", "root_hash",
)  # fmt: skip
_STANDARD: Final = frozenset(CSV_COLUMNS[1:11])
#: The longest ``job`` a link carries (it is a URL path segment).
MAX_JOB: Final = 6000
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class DownloadLink:
    """A capability to download one result set's file without a token, until ``expires``.

    Attributes:
        job: the result set, encoded (a URL path segment).
        expires: the Unix time it stops working.
        sig: the HMAC binding ``job`` to ``expires``.
        expires_at: ``expires`` as fixed-width RFC 3339.
    """

    job: str
    expires: int
    sig: str
    expires_at: str


class DownloadLinks:
    """Issues and checks download links.

    Args:
        signer: the checkpoint signing key, whose seed the links' key is derived from.
        ttl: seconds a link stays valid (``TRAILKEEP_EXPORT_LINK_TTL``).
    """

    def __init__(self, signer: Signer, ttl: float) -> None:
        # A key of its own: derived from (never equal to) the seed, and not the native
        # exports' key, so neither surface's link can be replayed on the other.
        seed = signer.private_key.private_bytes_raw()
        self._key = hmac.new(seed, b"trailkeep pangea download v1", hashlib.sha256).digest()
        self.ttl = ttl

    def _sig(self, job: str, expires: int) -> str:
        message = f"trailkeep pangea download link v1\n{job}\n{expires}".encode()
        return b64(hmac.new(self._key, message, hashlib.sha256).digest())

    def issue(self, data: dict[str, Any]) -> DownloadLink:
        """A fresh link to the file of the result set ``data`` describes."""
        job = b64(zlib.compress(orjson.dumps(data), 9))
        if len(job) > MAX_JOB:
            raise InvalidInputError(
                "the search is too long to fit a download link; use a shorter query or"
                " search_restriction"
            )
        expires = int(time.time() + self.ttl)
        at = format_time(datetime.fromtimestamp(expires, UTC))
        return DownloadLink(job, expires, self._sig(job, expires), at)

    def open(self, job: str, expires: int, sig: str) -> dict[str, Any]:
        """The result set a link names, once its signature and expiry check out.

        Raises:
            AuthenticationError: a signature that does not match (a guessed or altered link,
                ``INVALID_LINK``), or an expired link (``LINK_EXPIRED``).
        """
        if not hmac.compare_digest(sig.encode(), self._sig(job, expires).encode()):
            raise AuthenticationError(
                "invalid download link: ask download_results for a new one", code="INVALID_LINK"
            )
        if expires <= time.time():
            at = format_time(datetime.fromtimestamp(expires, UTC))
            raise AuthenticationError(
                f"this download link expired at {at}; ask download_results for a new one",
                code="LINK_EXPIRED",
            )
        try:
            data = orjson.loads(zlib.decompress(unb64(job)))
        except (ValueError, binascii.Error, zlib.error, orjson.JSONDecodeError):
            data = None
        if not isinstance(data, dict) or data.get("v") != 1:  # signed, so ours: a bug
            raise AuthenticationError("invalid download link", code="INVALID_LINK")
        return data


def filename(created_at: str, fmt: str) -> str:
    """The file's name, the last segment of its URL (what the sync SDK saves it as)."""
    stamp = created_at[:19].replace("-", "").replace(":", "")
    return f"search_results_{stamp}Z.{fmt}.gz"


# -- the file ---------------------------------------------------------------------------------


def _gzip(chunks: Iterable[bytes]) -> Iterator[bytes]:
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: a gzip member
    for chunk in chunks:
        packed = packer.compress(chunk)
        if packed:
            yield packed
    yield packer.flush()


def _json_file(head: dict[str, Any], pages: Iterable[list[dict[str, Any]]]) -> Iterator[bytes]:
    """``{"events": [...], "count", "root"?, "unpublished_root"?}``: the shape of a
    ``/v1/results`` result holding every event (the SDK's ``SearchResultOutput``)."""
    yield b'{"events":['
    sep = b"\n"
    for events in pages:
        if events:
            yield sep + b",\n".join(orjson.dumps(e) for e in events)
            sep = b",\n"
    tail = orjson.dumps(head)
    yield b"\n]" + (b"," + tail[1:] if len(tail) > 2 else b"}") + b"\n"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = value if isinstance(value, str) else canonical_json(value).decode()
    if isinstance(value, str) and text.startswith(_FORMULA_START):
        return "'" + text  # shown as text, never evaluated; the JSON format keeps it as is
    return text


def csv_row(item: dict[str, Any], roots: dict[bool, str | None]) -> list[str]:
    """One event (as a search answers it) as cells in ``CSV_COLUMNS`` order."""
    envelope = item["envelope"]
    event = envelope.get("event") or {}
    other = {k: v for k, v in event.items() if k not in _STANDARD}
    proof = item.get("membership_proof")
    values: dict[str, Any] = {
        **{k: event.get(k) for k in _STANDARD},
        "received_at": envelope.get("received_at"),
        "other": other or None,
        "signature": envelope.get("signature"),
        "public_key": envelope.get("public_key"),
        "hash": item["hash"],
        "published": item["published"],
        "leaf_index": item.get("leaf_index"),
        "membership_proof": proof,
        "root_hash": roots[item["published"]] if proof is not None else None,
    }
    return [_cell(values[c]) for c in CSV_COLUMNS]


def _csv_file(head: dict[str, Any], pages: Iterable[list[dict[str, Any]]]) -> Iterator[bytes]:
    root, unpublished = head.get("root"), head.get("unpublished_root")
    roots = {
        True: root["root_hash"] if root else None,
        False: unpublished["root_hash"] if unpublished else None,
    }
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for events in pages:
        writer.writerows(csv_row(e, roots) for e in events)
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue().encode()


def file_chunks(
    fmt: str, head: dict[str, Any], pages: Iterable[list[dict[str, Any]]]
) -> Iterator[bytes]:
    """The gzip file of a result set: ``head`` (``count`` and, when verbose, the roots) and
    its events page by page, each as a search answers it (envelope, hash, proofs)."""
    body = _json_file(head, pages) if fmt == "json" else _csv_file(head, pages)
    return _gzip(body)
