"""C2SP signed notes (c2sp.org/signed-note): the syntax of a note and its signature lines.

A note is UTF-8 text ending in a newline, a blank line, then one or more signature lines
``— <key name> <base64(4-byte key id ‖ signature)>``; the signatures cover the text including its
final newline, and the text ends at the note's *last* blank line, so the text may contain blank
lines of its own. This module only splits and checks syntax; ``keys.Verifier`` decides whether a
note is to be trusted.

Parsing is as strict as golang.org/x/mod/sumdb/note (no control characters, at most 100
signatures, no trailing garbage) and stricter in one way: base64 must be canonical, so a note has
exactly one spelling.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Final

from trailkeep.merkle._text import b64decode_canonical, find_forbidden_character
from trailkeep.merkle.errors import MalformedNoteError

__all__ = ["MAX_SIGNATURES", "NoteSignature", "SignedNote", "is_valid_key_name", "parse_note"]

MAX_SIGNATURES: Final = 100
"""Signature lines we parse at most; sumdb/note's limit, the spec asks for at least 16."""

SIG_PREFIX: Final = "\u2014 "
"""What every signature line starts with: an em dash and a space."""


def is_valid_key_name(name: str) -> bool:
    """Whether ``name`` may name a note key: non-empty, no Unicode space, no ``+``, printable."""
    return (
        bool(name)
        and "+" not in name
        and not any(ch.isspace() for ch in name)
        and find_forbidden_character(name) is None
    )


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line of a note, parsed but not verified.

    Attributes:
        name: the key name.
        key_id: the 4-byte key id.
        signature: the signature bytes after the key id.
    """

    name: str
    key_id: bytes
    signature: bytes

    def to_line(self) -> str:
        """The line as it appears in a note, newline included."""
        blob = base64.b64encode(self.key_id + self.signature).decode("ascii")
        return f"{SIG_PREFIX}{self.name} {blob}\n"


@dataclass(frozen=True, slots=True)
class SignedNote:
    """A note split into its signed text and its signature lines; nothing is verified yet.

    Attributes:
        text: the signed text, ending in a newline.
        signatures: the signature lines, in order.
    """

    text: str
    signatures: tuple[NoteSignature, ...]

    def to_text(self) -> str:
        """The note as it is sent: text, blank line, signature lines."""
        return self.text + "\n" + "".join(sig.to_line() for sig in self.signatures)


def parse_note(note: str | bytes) -> SignedNote:
    """Split a signed note into text and signature lines, checking the C2SP syntax only.

    The text ends at the last blank line. Use ``Verifier.verify_note`` to trust the text.

    Raises:
        MalformedNoteError: the note breaks the signed-note syntax; the message says where.
    """
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedNoteError(f"note is not valid UTF-8 at byte {exc.start}") from None
    bad = find_forbidden_character(note)
    if bad is not None:
        raise MalformedNoteError(
            f"note contains forbidden character U+{ord(note[bad]):04X} at offset {bad}"
        )
    split = note.rfind("\n\n")
    if split < 0:
        raise MalformedNoteError("note has no blank line between its text and its signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block:
        raise MalformedNoteError("note has no signature lines after its last blank line")
    if not block.endswith("\n"):
        raise MalformedNoteError("note does not end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNoteError(
            f"note has {len(lines)} signature lines, more than the {MAX_SIGNATURES} we accept"
        )
    return SignedNote(text, tuple(_parse_signature_line(n, line) for n, line in enumerate(lines)))


def _parse_signature_line(number: int, line: str) -> NoteSignature:
    if not line.startswith(SIG_PREFIX):
        raise MalformedNoteError(
            f"signature line {number} does not start with an em dash and a space: {line[:40]!r}"
        )
    name, space, blob = line[len(SIG_PREFIX) :].partition(" ")
    if not space or not is_valid_key_name(name):
        raise MalformedNoteError(f"signature line {number} has no valid key name: {line[:40]!r}")
    raw = b64decode_canonical(blob)
    if raw is None:
        raise MalformedNoteError(f"signature line {number} for {name!r} is not canonical base64")
    if len(raw) < 5:
        raise MalformedNoteError(
            f"signature line {number} for {name!r} has {len(raw)} bytes, less than a key id "
            "and a signature"
        )
    return NoteSignature(name, raw[:4], raw[4:])
