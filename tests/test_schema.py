"""The committed schema.graphql is the export of the code, and a compatible superset of the contract's
foundation members (staff, jobs, audit, login, paging)."""

from pathlib import Path

from graphql import BreakingChangeType, build_schema, find_breaking_changes

from schema.build import export_sdl

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT.parent / "shared" / "api" / "contract.graphql"


def test_schema_graphql_matches_the_code():
    committed = (ROOT / "schema.graphql").read_text(encoding="utf-8")
    assert committed == export_sdl(), "schema.graphql is stale: run `crm export-schema` (make schema)"


def test_nothing_in_the_contract_is_changed_incompatibly():
    if not CONTRACT.exists():
        import pytest

        pytest.skip("the shared contract is not beside this checkout")
    contract = build_schema(CONTRACT.read_text(encoding="utf-8"))
    ours = build_schema(export_sdl())
    # Members the later domains will add are "removed" for now; anything else is a real incompatibility.
    not_yet = {
        BreakingChangeType.TYPE_REMOVED,
        BreakingChangeType.FIELD_REMOVED,
        BreakingChangeType.VALUE_REMOVED_FROM_ENUM,
    }
    incompatible = [c.description for c in find_breaking_changes(contract, ours) if c.type not in not_yet]
    assert incompatible == []


def test_foundation_members_of_the_contract_are_all_present():
    if not CONTRACT.exists():
        import pytest

        pytest.skip("the shared contract is not beside this checkout")
    ours = build_schema(export_sdl())
    contract = build_schema(CONTRACT.read_text(encoding="utf-8"))
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
