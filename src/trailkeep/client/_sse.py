"""A Server-Sent Events decoder (the WHATWG event-stream grammar), fed one line at a time."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SSEDecoder", "SSEMessage"]


@dataclass(frozen=True, slots=True)
class SSEMessage:
    """One dispatched message; a comment-only block is a message with ``comment`` set.

    Attributes:
        event: the ``event:`` field, ``"message"`` by default.
        data: the ``data:`` lines joined by newlines.
        id: the ``id:`` field of this message, or None if it had none.
        retry: the ``retry:`` field in milliseconds, if given.
        comment: the text of ``:`` lines, for keepalives.
    """

    event: str
    data: str
    id: str | None
    retry: int | None = None
    comment: str | None = None


class SSEDecoder:
    """Turns the lines of an event stream into messages; no I/O."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None
        self._retry: int | None = None
        self._comment: list[str] = []

    def feed(self, line: str) -> SSEMessage | None:
        """Take one line (without its newline); a blank line dispatches what came before."""
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            self._comment.append(line[1:].strip())
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> SSEMessage | None:
        if not (self._data or self._event or self._id is not None or self._retry is not None):
            comment = " ".join(self._comment) if self._comment else None
            self._reset()
            return SSEMessage("", "", None, comment=comment) if comment else None
        message = SSEMessage(
            self._event or "message",
            "\n".join(self._data),
            self._id,
            self._retry,
            " ".join(self._comment) or None,
        )
        self._reset()
        return message
