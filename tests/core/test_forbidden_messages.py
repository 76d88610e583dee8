"""Every FORBIDDEN names the roles that may do the thing, so that a SERVICE_AGENT knows whom to ask."""

from __future__ import annotations

from models.staff import Role
from services import access
from services.access import Caller, require_role
from services.errors import DomainError
from tests.complaints.helpers import file, new_customer

BARE = "You are not allowed to do this"


def test_no_role_set_gives_a_bare_message():
    for name, roles in access.ROLE_TABLE.items():
        message = access.not_allowed(roles)
        assert message != BARE and message.startswith(BARE + "; it needs "), name
    # A caller who is no staff member at all (e.g. a public request reaching a service) is told so too.
    try:
        require_role(Caller(), access.ALL_ROLES)
    except DomainError as error:
        assert error.message == "You are not allowed to do this; it needs a signed-in staff member (any role)"
    else:
        raise AssertionError("no FORBIDDEN")


async def test_a_service_agent_is_told_which_roles_may(gql, admin, staff_factory):
    _, admin_token = admin
    _, agent = await staff_factory(Role.SERVICE_AGENT)
    customer = await new_customer(gql, admin_token)
    complaint = await file(gql, admin_token, customer["id"])

    mutations = {
        "acknowledgeComplaint": (
            "mutation($id: ID!) { acknowledgeComplaint(input: {id: $id}) { errors { code message } } }",
            {"id": complaint["id"]},
            access.COMPLAINT_HANDLERS,
        ),
        "createSegment": (
            'mutation { createSegment(input: {name: "高净值", filter: {}}) { errors { code message } } }',
            None,
            access.SEGMENT_EDITORS,
        ),
    }
    for field, (query, variables, roles) in mutations.items():
        errors = (await gql(query, variables, token=agent))[field]["errors"]
        assert [e["code"] for e in errors] == ["FORBIDDEN"], field
        assert errors[0]["message"] == f"{BARE}; it needs one of the roles {access.describe(roles)}", field

    audit = await gql.errors("{ auditLog(first: 1) { totalCount } }", token=agent)
    assert audit[0]["extensions"]["code"] == "FORBIDDEN"
    assert audit[0]["message"] == f"{BARE}; it needs one of the roles {access.describe(access.AUDIT_READERS)}"
