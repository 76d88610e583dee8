"""A survey link is for the customer alone: staff reading the outbox never see its token."""

from __future__ import annotations

from tests.complaints.helpers import new_customer
from tests.surveys.helpers import create_template, send, token_of

OUTBOX = """query($customerId: ID) { notifications(customerId: $customerId, first: 5) { edges { node { body } } } }"""


async def test_the_outbox_hides_the_token_of_a_waiting_link(gql, admin, outbox):
    template = await create_template(gql, admin[1])
    customer = await new_customer(gql, admin[1])
    invitation = await send(gql, admin[1], template["id"], customer["id"])
    link = await token_of(invitation["id"])  # still in the stored body: the message has not left yet

    listed = await gql(OUTBOX, {"customerId": customer["id"]}, token=admin[1])
    [edge] = listed["notifications"]["edges"]
    assert link not in edge["node"]["body"]
    assert "/s/[已隐藏]" in edge["node"]["body"]
