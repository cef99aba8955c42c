"""The access code as a secret that never prints, and the check of its shape."""

from __future__ import annotations


class Secret:
    """A string that never shows itself in reprs, logs or f-strings: use ``.reveal()``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    def __str__(self) -> str:
        return "********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


def redact(text: str, *secrets: Secret | str | None) -> str:
    """``text`` with every secret value replaced by ``********``."""
    for secret in secrets:
        value = secret.reveal() if isinstance(secret, Secret) else secret
        if value:
            text = text.replace(value, "********")
    return text


def access_code_problem(code: str) -> str | None:
    """Why ``code`` cannot be a LAN access code, or None when it looks right."""
    if not code:
        return "the access code is empty"
    if code != code.strip():
        return "the access code has spaces around it"
    if len(code) != 8:
        return f"a LAN access code has 8 characters, this one has {len(code)}"
    if not code.isascii() or not code.isprintable():
        return "a LAN access code has only letters and digits"
    return None
