"""Mutation conventions in one place: authentication, the role check, one transaction, the audit
entry, and domain errors turned into UserErrors (FORBIDDEN included, as docs/DOMAIN.md asks)."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import Any

import strawberry
from strawberry.extensions import FieldExtension
from strawberry.types import Info

from core.db import atomic
from models.staff import Role
from schema.base import Node, UserError, from_global_id, unauthenticated
from services import audit
from services.access import not_allowed
from services.errors import DomainError, forbidden

SECRET_INPUTS = frozenset({"password", "token"})
UNAUTHENTICATED_MUTATION = "auth.unauthenticated_mutation"


class MutationConventions(FieldExtension):
    def __init__(
        self, action: str | None, roles: frozenset[Role] | None, *, public: bool = False, service_audits: bool = False
    ) -> None:
        self.action = action  # None: the service writes its own audit entries and transactions (login)
        self.roles = roles
        self.public = public
        # The service writes a richer success entry itself (merge counts, erasure reason); rejections stay here.
        self.service_audits = service_audits

    def apply(self, field: Any) -> None:
        self.field = field

    async def resolve_async(self, next_: Any, source: Any, info: Info, **kwargs: Any) -> Any:
        caller = await info.context.caller()
        if caller.staff is None and not self.public:
            await _record_unauthenticated(info, caller)
            raise unauthenticated()
        payload_type = self.field.type
        detail = {"input": _provided_fields(kwargs.get("input"))}
        try:
            if self.roles is not None and caller.role not in self.roles:
                raise forbidden(not_allowed(self.roles))
            if self.action is None:
                return await next_(source, info, **kwargs)
            async with atomic():
                payload = await next_(source, info, **kwargs)
                if not self.service_audits:
                    subject_type, subject_id = _subject(payload, kwargs.get("input"))
                    await audit.record(
                        caller, self.action, subject_type=subject_type, subject_id=subject_id, detail=detail
                    )
            return payload
        except DomainError as error:
            if self.action is not None:
                subject_type, subject_id = _subject(None, kwargs.get("input"))
                await audit.record(
                    caller,
                    f"{self.action}.rejected",
                    subject_type=subject_type,
                    subject_id=subject_id,
                    detail={
                        **detail,
                        "errors": [e.code.value for e in error.errors],
                    },
                )
            return payload_type(errors=UserError.from_domain(error))


async def _record_unauthenticated(info: Info, caller: Any) -> None:
    """A mutation tried without a valid token: its name, the client's address and whether a (revoked, expired
    or unknown) token came with it; never the variables or the token (docs/DOMAIN.md, "Audit")."""
    await audit.record(
        caller,
        UNAUTHENTICATED_MUTATION,
        detail={"mutation": info.field_name, "token": "invalid" if info.context.token_presented else "missing"},
    )


def _provided_fields(value: Any) -> list[str]:
    """Names of the input fields the caller gave; values stay out of the audit trail (they may be PII)."""
    if value is None or not is_dataclass(value):
        return []
    return sorted(
        _camel(f.name)
        for f in fields(value)
        if getattr(value, f.name) is not strawberry.UNSET
        and getattr(value, f.name) is not None
        and f.name not in SECRET_INPUTS
    )


def _camel(name: str) -> str:
    head, *rest = name.rstrip("_").split("_")
    return head + "".join(part.title() for part in rest)


def _subject(payload: Any, input_value: Any) -> tuple[str | None, str | None]:
    for value in vars(payload).values() if payload is not None else ():
        if isinstance(value, Node):
            parsed = from_global_id(value.id)
            if parsed:
                return parsed
    raw_id = getattr(input_value, "id", None)
    parsed = from_global_id(raw_id) if isinstance(raw_id, str) else None
    return parsed if parsed else (None, None)


def mutation(
    action: str | None,
    roles: frozenset[Role] | None,
    *,
    public: bool = False,
    service_audits: bool = False,
    **kwargs: Any,
):
    extension = MutationConventions(action, roles, public=public, service_audits=service_audits)
    return strawberry.mutation(extensions=[extension], **kwargs)
