"""The role table (services/access.py) against the schema: every root field declares one of its named
sets, no service keeps a set of its own, and FORBIDDEN names the roles that may do the thing."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
from strawberry.permission import PermissionExtension
from strawberry.schema.name_converter import NameConverter

import services
from models.staff import Role
from schema.conventions import MutationConventions
from schema.permissions import RolesAllowed
from schema.root import Mutation, Query, Subscription
from services import access

# Fields any signed-in caller (or, for login, anyone) may use; each checks what it shows itself.
OPEN_FIELDS = {
    "node", "nodes", "me", "login", "complaintUpdated", "jobProgress", "surveyByToken", "submitSurveyResponse",
}  # fmt: skip
NAMES = NameConverter()
NAMED_SETS = {id(value): name for name, value in access.ROLE_TABLE.items()}


def _declared(root: type) -> dict[str, frozenset[Role] | None]:
    """GraphQL field name -> the role set its extension declares (None: no role check)."""
    found = {}
    for field in root.__strawberry_definition__.fields:
        roles = None
        for extension in field.extensions:
            if isinstance(extension, PermissionExtension):
                roles = next(p.roles for p in extension.permissions if isinstance(p, RolesAllowed))
            elif isinstance(extension, MutationConventions):
                roles = extension.roles
        found[NAMES.from_field(field)] = roles
    return found


ROOT_FIELDS = {**_declared(Query), **_declared(Mutation), **_declared(Subscription)}


@pytest.mark.parametrize("name", sorted(ROOT_FIELDS))
def test_every_root_field_declares_a_named_role_set(name):
    roles = ROOT_FIELDS[name]
    if name in OPEN_FIELDS:
        assert roles is None, f"{name} is open to every caller; it must not declare roles"
        return
    assert roles is not None, f"{name} declares no roles: pick a set from services/access.py"
    assert id(roles) in NAMED_SETS, f"{name} declares a set that is not one of services/access.py's named sets"


def test_fields_that_disagreed_with_their_services_now_agree():
    assert ROOT_FIELDS["complaintStats"] is access.COMPLAINT_STATS_READERS
    assert ROOT_FIELDS["exportComplaintReport"] is access.COMPLAINT_STATS_READERS
    assert ROOT_FIELDS["exportCustomerData"] is access.CUSTOMER_EXPORTERS


def test_no_service_keeps_a_role_set_of_its_own():
    """Role sets live in services/access.py only: a module-level set of roles elsewhere is a copy."""
    copies = []
    for info in pkgutil.iter_modules(services.__path__):
        module = importlib.import_module(f"services.{info.name}")
        for name, value in vars(module).items():
            is_role_set = isinstance(value, frozenset | set) and value and all(isinstance(v, Role) for v in value)
            if is_role_set and not any(value is named for named in access.ROLE_TABLE.values()):
                copies.append(f"{module.__name__}.{name}")
    assert copies == []


def test_the_table_names_each_set_for_what_it_allows():
    source = inspect.getsource(access)
    for name in access.ROLE_TABLE:
        if name != "ALL_ROLES":
            line = source.index(f"\n{name} = ")
            assert source[:line].rstrip().splitlines()[-1].startswith("#"), (
                f"{name} has no comment saying what it allows"
            )


async def test_forbidden_names_the_roles_that_may(gql, staff_factory):
    _, agent = await staff_factory(Role.SERVICE_AGENT)
    _, analyst = await staff_factory(Role.ANALYST)

    created = await gql(
        'mutation { createCustomer(input: {kind: INDIVIDUAL, name: "王芳"}) { errors { code message } } }', token=agent
    )
    error = created["createCustomer"]["errors"][0]
    assert error["code"] == "FORBIDDEN"
    assert "ADMIN, MANAGER, RELATIONSHIP_MANAGER" in error["message"]

    exported = await gql.errors('{ exportCustomerData(id: "x") }', token=analyst)
    assert exported[0]["extensions"]["code"] == "FORBIDDEN"
    assert "ADMIN, MANAGER, RELATIONSHIP_MANAGER" in exported[0]["message"]


async def test_complaint_stats_are_refused_at_the_field_to_those_the_service_refuses(gql, staff_factory):
    _, agent = await staff_factory(Role.SERVICE_AGENT)
    query = """{ complaintStats(groupBy: CATEGORY, period: {from: "2026-01-01T00:00:00Z", to: "2026-02-01T00:00:00Z"})
      { key count } }"""
    errors = await gql.errors(query, token=agent)
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    assert access.describe(access.COMPLAINT_STATS_READERS) in errors[0]["message"]
