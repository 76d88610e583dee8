"""A job's file is downloadable only while its creator still holds a role allowed to start that kind of job
(docs/DOMAIN.md, limits and protection)."""

from __future__ import annotations

from models.staff import Role, Staff
from schema.base import int_pk, to_global_id
from tests.jobs.helpers import EXPORT, wait_for_job


async def _finished_export(gql, token: str) -> int:
    payload = (await gql(EXPORT, {"input": {}}, token=token))["exportAuditLog"]
    job = await wait_for_job(gql, token, payload["job"]["id"])
    assert job["status"] == "SUCCEEDED"
    return int_pk(job["id"], "Job")


async def test_the_file_goes_when_its_creator_loses_the_role(gql, client, staff_factory, admin):
    member, token = await staff_factory(Role.AUDITOR)
    _, admin_token = admin
    pk = await _finished_export(gql, token)
    for bearer in (token, admin_token):
        response = await client.get(f"/jobs/{pk}/download", headers={"Authorization": f"Bearer {bearer}"})
        assert response.status_code == 200

    await Staff.filter(id=member.id).update(role=Role.ANALYST)  # analysts may not read the audit log
    for bearer in (token, admin_token):
        response = await client.get(f"/jobs/{pk}/download", headers={"Authorization": f"Bearer {bearer}"})
        assert response.status_code in (401, 403, 404), response.status_code
        assert "csv" not in response.headers.get("content-type", "")

    await Staff.filter(id=member.id).update(role=Role.MANAGER)  # managers may: the file is back
    response = await client.get(f"/jobs/{pk}/download", headers={"Authorization": f"Bearer {admin_token}"})
    assert response.status_code == 200


async def test_the_file_goes_when_its_creator_is_deactivated(gql, client, staff_factory, admin):
    member, token = await staff_factory(Role.AUDITOR)
    _, admin_token = admin
    pk = await _finished_export(gql, token)
    await Staff.filter(id=member.id).update(active=False)
    response = await client.get(f"/jobs/{pk}/download", headers={"Authorization": f"Bearer {admin_token}"})
    assert response.status_code == 403


async def test_graphql_hands_out_the_file_under_the_same_rule(gql, staff_factory, admin):
    member, token = await staff_factory(Role.AUDITOR)
    _, admin_token = admin
    pk = await _finished_export(gql, token)
    query = "query($id: ID!) { node(id: $id) { ... on Job { result } } }"
    gid = to_global_id("Job", pk)
    assert "csv" in (await gql(query, {"id": gid}, token=admin_token))["node"]["result"]

    await Staff.filter(id=member.id).update(role=Role.ANALYST)
    result = (await gql(query, {"id": gid}, token=admin_token))["node"]["result"]
    assert "csv" not in result and result["rows"] >= 1  # the rest of the result stays
