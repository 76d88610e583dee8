"""The committed schema.graphql is the export of the code, and compatible with the contract: every contract
member is in it except those listed in NOT_BUILT_YET (the list shrinks as domains land), the foundation
members (staff, jobs, audit, login, paging) always, and nothing in it contradicts the contract."""

from pathlib import Path

import pytest
from graphql import BreakingChangeType, GraphQLEnumType, GraphQLSchema, build_schema, find_breaking_changes

from schema.build import export_sdl

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT.parent / "shared" / "api" / "contract.graphql"

# Contract members that the later domains (surveys, notifications, portraits and segments, logout) will add,
# as schema coordinates: a whole type ("SurveyTemplate"; its fields go with it), a field or input field of a
# type we have ("Customer.portrait", "Query.segments"), an enum value (""X"") or an argument
# ("Query.customers(filter:)"). It agrees with `python ../shared/tools/contract_check.py schema.graphql`.
# When a domain lands, delete its members from here: the test fails until you do.
NOT_BUILT_YET: list[str] = []

# The breaking changes that a member missing from our schema shows up as; every other kind is a real
# incompatibility (a changed type, a new required argument, ...).
MISSING_KINDS = {
    BreakingChangeType.TYPE_REMOVED,
    BreakingChangeType.FIELD_REMOVED,
    BreakingChangeType.VALUE_REMOVED_FROM_ENUM,
    BreakingChangeType.ARG_REMOVED,
}


def test_schema_graphql_matches_the_code():
    committed = (ROOT / "schema.graphql").read_text(encoding="utf-8")
    assert committed == export_sdl(), "schema.graphql is stale: run `crm export-schema` (make schema)"


def _schemas() -> tuple[GraphQLSchema, GraphQLSchema]:
    """(the contract, ours); skips when the shared contract is not beside this checkout."""
    if not CONTRACT.exists():
        pytest.skip("the shared contract is not beside this checkout")
    return build_schema(CONTRACT.read_text(encoding="utf-8")), build_schema(export_sdl())


def missing_members(contract: GraphQLSchema, ours: GraphQLSchema) -> set[str]:
    """Every contract member that our schema lacks, named like NOT_BUILT_YET. A missing type stands for its
    fields, and a missing field for its arguments: those are not named again."""
    missing = set()
    for name, wanted in contract.type_map.items():
        if name.startswith("__"):
            continue
        have = ours.type_map.get(name)
        if have is None:
            missing.add(name)
        elif isinstance(wanted, GraphQLEnumType):
            missing.update(f"{name}.{value}" for value in wanted.values if value not in getattr(have, "values", {}))
        elif hasattr(wanted, "fields"):  # object, interface and input types
            fields = getattr(have, "fields", {})
            for field_name, field in wanted.fields.items():
                if field_name not in fields:
                    missing.add(f"{name}.{field_name}")
                    continue
                args = getattr(fields[field_name], "args", {})
                missing.update(f"{name}.{field_name}({arg}:)" for arg in getattr(field, "args", {}) if arg not in args)
    return missing


def test_the_list_of_contract_members_not_built_yet_is_exact():
    contract, ours = _schemas()
    assert sorted(set(NOT_BUILT_YET)) == NOT_BUILT_YET, "keep NOT_BUILT_YET sorted and without duplicates"
    missing = missing_members(contract, ours)
    unlisted = sorted(missing - set(NOT_BUILT_YET))
    assert unlisted == [], f"contract members missing from our schema (removed by mistake?): {unlisted}"
    built = sorted(set(NOT_BUILT_YET) - missing)
    assert built == [], f"these are in our schema now: delete them from NOT_BUILT_YET in {__file__}: {built}"
    # graphql-core sees exactly as many removals as the walk above (one per missing type, field, value, arg).
    removals = [c.description for c in find_breaking_changes(contract, ours) if c.type in MISSING_KINDS]
    assert len(removals) == len(missing), sorted(removals)


def test_nothing_in_the_contract_is_changed_incompatibly():
    contract, ours = _schemas()
    # Missing members are judged (against NOT_BUILT_YET) by the test above; anything else is incompatible.
    incompatible = [c.description for c in find_breaking_changes(contract, ours) if c.type not in MISSING_KINDS]
    assert incompatible == []


def test_foundation_members_of_the_contract_are_all_present():
    contract, ours = _schemas()
    for type_name in (
        "Staff",
        "StaffConnection",
        "StaffEdge",
        "StaffPayload",
        "LoginPayload",
        "Job",
        "JobConnection",
        "JobEdge",
        "JobError",
        "JobPayload",
        "AuditEntry",
        "AuditEntryConnection",
        "AuditEntryEdge",
        "PageInfo",
        "UserError",
        "Node",
        "CreateStaffInput",
        "UpdateStaffInput",
        "LoginInput",
        "AuditFilter",
        "Role",
        "Department",
        "JobKind",
        "JobStatus",
        "ErrorCode",
    ):
        wanted = contract.type_map[type_name]
        have = ours.type_map.get(type_name)
        assert have is not None, type_name
        for member in getattr(wanted, "fields", None) or getattr(wanted, "values", {}):
            members = getattr(have, "fields", None) or getattr(have, "values", {})
            assert member in members, f"{type_name}.{member}"
    for root, fields in (
        ("Query", ["node", "nodes", "me", "staff", "job", "jobs", "auditLog"]),
        ("Mutation", ["login", "createStaff", "updateStaff"]),
        ("Subscription", ["jobProgress"]),
    ):
        assert set(fields) <= set(ours.type_map[root].fields), root
