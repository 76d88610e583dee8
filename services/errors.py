from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    INVALID = "INVALID"
    REQUIRED = "REQUIRED"
    DUPLICATE = "DUPLICATE"
    NOT_FOUND = "NOT_FOUND"
    STALE_VERSION = "STALE_VERSION"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    NO_CONSENT = "NO_CONSENT"
    FORBIDDEN = "FORBIDDEN"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"


class DomainError(Exception):
    """A business-rule failure: a UserError in a mutation payload, a coded GraphQL error in a query."""

    def __init__(self, code: ErrorCode, message: str, field: str | list[str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = [field] if isinstance(field, str) else field

    @property
    def errors(self) -> list[DomainError]:
        return [self]


class DomainErrors(DomainError):
    """Several independent failures found at once (e.g. every invalid field of an input)."""

    def __init__(self, errors: list[DomainError]) -> None:
        super().__init__(errors[0].code, "; ".join(e.message for e in errors), errors[0].field)
        self._errors = errors

    @property
    def errors(self) -> list[DomainError]:
        return self._errors


def not_found(what: str, field: str | list[str] | None = "id") -> DomainError:
    return DomainError(ErrorCode.NOT_FOUND, f"{what} not found", field)


def forbidden(message: str = "You are not allowed to do this") -> DomainError:
    return DomainError(ErrorCode.FORBIDDEN, message)


def invalid(field: str | list[str], message: str) -> DomainError:
    return DomainError(ErrorCode.INVALID, message, field)
