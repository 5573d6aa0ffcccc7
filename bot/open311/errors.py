"""A refused Open311 call: the spec's HTTP status and a catalogue text saying why."""

from __future__ import annotations


class Open311Error(Exception):
    """Answered as the spec's `errors` list: `code` (the HTTP status) and `description`.

    `key` names an `open311.error.*` catalogue text, rendered in the caller's language.
    """

    def __init__(self, status: int, key: str, /, **params: object) -> None:
        super().__init__(key)
        self.status = status
        self.key = key
        self.params = params


def bad_request(key: str, /, **params: object) -> Open311Error:
    return Open311Error(400, f"open311.error.{key}", **params)


def forbidden(key: str, /, **params: object) -> Open311Error:
    return Open311Error(403, f"open311.error.{key}", **params)


def not_found(key: str, /, **params: object) -> Open311Error:
    return Open311Error(404, f"open311.error.{key}", **params)
