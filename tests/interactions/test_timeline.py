"""The customer timeline: every kind merged newest first, with cursors that hold across kinds and equal times."""

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from models.customers import ChangeEntry, Channel, Customer, ProductHolding, ProductType
from models.follow_ups import FollowUp
from models.interactions import Direction, Interaction, InteractionKind, InteractionStatus
from models.notes import Note
from models.staff import Role
from services import timeline as timeline_service
from services.pagination import encode_cursor
from tests.conftest import QueryCounter, StatementCounter
from tests.customers.helpers import create

TIMELINE = """query($id: ID!, $first: Int, $after: String, $last: Int, $before: String) { customer(id: $id) {
  timeline(first: $first, after: $after, last: $last, before: $before) { totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { kind at title detail subject { __typename id } } } } } }"""


async def _mixed_items(customer_id: int, count: int, seed: int = 11, minutes: int = 40) -> list:
    """`count` items of five kinds, many sharing exact timestamps (spread over `minutes` distinct times)."""
    rng = random.Random(seed)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    moments = [base + timedelta(minutes=rng.randrange(minutes)) for _ in range(count)]  # 1000: ~25 a minute
    rows = []
    for i, at in enumerate(moments):
        kind = i % 5
        if kind == 0:
            rows.append(
                await Interaction.create(
                    customer_id=customer_id,
                    channel=Channel.PHONE,
                    direction=Direction.INBOUND,
                    kind=InteractionKind.INQUIRY,
                    status=InteractionStatus.OPEN,
                    subject=f"call {i}",
                    occurred_at=at,
                )
            )
        elif kind == 1:
            rows.append(await FollowUp.create(customer_id=customer_id, title=f"task {i}", created_at=at))
        elif kind == 2:
            rows.append(await Note.create(customer_id=customer_id, body=f"note {i}", created_at=at))
        elif kind == 3:
            rows.append(await ChangeEntry.create(customer_id=customer_id, field="occupation", at=at))
        else:
            rows.append(
                await ProductHolding.create(
                    customer_id=customer_id,
                    account_no=f"6222{i:012d}",
                    product=ProductType.FUND,
                    balance=Decimal("1"),
                    opened_at=at.date(),
                    created_at=at,
                )
            )
    return rows


async def _force_times(rows) -> None:
    # auto_now_add fields ignore given values on create: set the intended times afterwards.
    for row in rows:
        if isinstance(row, (FollowUp, Note, ProductHolding)):
            await type(row).filter(id=row.id).update(created_at=row.created_at)
        elif isinstance(row, ChangeEntry):
            await ChangeEntry.filter(id=row.id).update(at=row.at)


async def test_paging_through_1000_mixed_items_in_pages_of_7(gql, admin):
    _, token = admin
    customer = await create(gql, token)
    pk = (await Customer.get()).id
    rows = await _mixed_items(pk, 1000)
    await _force_times(rows)
    seen, after, pages = [], None, 0
    while True:
        data = (await gql(TIMELINE, {"id": customer["id"], "first": 7, "after": after}, token=token))["customer"]
        timeline = data["timeline"]
        seen += [
            (e["node"]["kind"], e["node"]["at"], e["node"]["subject"]["id"] if e["node"]["subject"] else e["cursor"])
            for e in timeline["edges"]
        ]
        pages += 1
        if not timeline["pageInfo"]["hasNextPage"]:
            break
        after = timeline["pageInfo"]["endCursor"]
    assert timeline["totalCount"] == 1000
    assert pages == 143 and len(seen) == 1000
    assert len(set(seen)) == 1000, "an item came twice"
    times = [datetime.fromisoformat(at) for _, at, _ in seen]
    assert times == sorted(times, reverse=True), "not newest first"


async def test_backward_paging_returns_the_same_items(gql, admin):
    _, token = admin
    customer = await create(gql, token)
    pk = (await Customer.get()).id
    await _force_times(await _mixed_items(pk, 60, seed=3))
    forward = (await gql(TIMELINE, {"id": customer["id"], "first": 60}, token=token))["customer"]["timeline"]
    cursors = [e["cursor"] for e in forward["edges"]]
    collected, before = [], None
    while True:
        page = (await gql(TIMELINE, {"id": customer["id"], "last": 7, "before": before}, token=token))["customer"][
            "timeline"
        ]
        collected = [e["cursor"] for e in page["edges"]] + collected
        if not page["pageInfo"]["hasPreviousPage"]:
            break
        before = page["pageInfo"]["startCursor"]
    assert collected == cursors


async def test_items_describe_what_happened(gql, admin):
    _, token = admin
    customer = await create(gql, token)
    await gql(
        """mutation($input: LogInteractionInput!) { logInteraction(input: $input) { errors { code } } }""",
        {
            "input": {
                "customerId": customer["id"],
                "channel": "BRANCH",
                "direction": "INBOUND",
                "kind": "INQUIRY",
                "subject": "理财产品咨询",
            }
        },
        token=token,
    )
    await gql(
        """mutation($input: AddNoteInput!) { addNote(input: $input) { errors { code } } }""",
        {"input": {"subjectId": customer["id"], "body": "客户偏好电话联系"}},
        token=token,
    )
    items = (await gql(TIMELINE, {"id": customer["id"], "first": 10}, token=token))["customer"]["timeline"]["edges"]
    kinds = [(i["node"]["kind"], i["node"]["title"], i["node"]["subject"]["__typename"]) for i in items]
    assert kinds == [("NOTE", "Note (internal)", "Note"), ("INTERACTION", "理财产品咨询", "Interaction")]


async def test_a_hidden_customers_timeline_is_not_reachable(gql, admin, staff_factory):
    _, token = admin
    customer = await create(gql, token, branch="上海浦东支行")
    _, bound = await staff_factory(Role.RELATIONSHIP_MANAGER, branch="北京朝阳支行")
    data = await gql(TIMELINE, {"id": customer["id"], "first": 5}, token=bound)
    assert data["customer"] is None


async def test_a_page_of_50_customers_with_their_relations_costs_a_constant_number_of_queries(gql, admin):
    import random as stdlib_random

    from services.seed import _seed_customers

    member, token = admin
    await _seed_customers(55, stdlib_random.Random(5))
    ids = await Customer.all().values_list("id", flat=True)
    now = datetime.now(UTC)
    for n, pk in enumerate(ids):
        for j in range(n % 7):
            await Interaction.create(
                customer_id=pk,
                channel=Channel.PHONE,
                direction=Direction.OUTBOUND,
                kind=InteractionKind.ADVICE,
                status=InteractionStatus.RESOLVED,
                subject=f"s{j}",
                occurred_at=now - timedelta(minutes=j),
            )
            await FollowUp.create(customer_id=pk, title=f"t{j}", assignee=member)
            await Note.create(customer_id=pk, body=f"n{j}", author=member)
    query = """query($n: Int) { customers(first: $n) { edges { node { id
        interactions(first: 5) { totalCount pageInfo { hasNextPage } edges { node { subject staff { username } } } }
        followUps(first: 5) { totalCount edges { node { title assignee { username } } } }
        notes { body author { username } } } } } }"""

    async def statements(n: int) -> int:
        with QueryCounter() as counter:
            data = await gql(query, {"n": n}, token=token)
        edges = data["customers"]["edges"]
        assert len(edges) == n
        assert all(len(e["node"]["interactions"]["edges"]) <= 5 for e in edges)
        return counter.count

    small, large = await statements(5), await statements(50)
    assert small == large, (small, large)
    assert large <= 12, large


PAGE = """query($id: ID!, $first: Int, $after: String, $last: Int, $before: String) { customer(id: $id) {
  timeline(first: $first, after: $after, last: $last, before: $before) { %s
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node { kind } } } } }"""


async def test_a_page_costs_one_statement_for_its_keys_and_one_per_kind_on_it(gql, admin):
    _, token = admin
    customer = await create(gql, token)
    pk = (await Customer.get()).id
    await gql("query($id: ID!) { customer(id: $id) { id } }", {"id": customer["id"]}, token=token)  # the session
    with StatementCounter() as counter:
        await gql("query($id: ID!) { customer(id: $id) { id } }", {"id": customer["id"]}, token=token)
    baseline = counter.count  # the session and the customer

    async def statements(first: int, total: bool = False) -> tuple[int, set[str]]:
        with StatementCounter() as counter:
            data = await gql(
                PAGE % ("totalCount" if total else ""), {"id": customer["id"], "first": first}, token=token
            )
        page = data["customer"]["timeline"]
        assert len(page["edges"]) == min(first, 70)
        return counter.count - baseline, {e["node"]["kind"] for e in page["edges"]}

    newest = datetime(2026, 2, 1, tzinfo=UTC)
    notes = [await Note.create(customer_id=pk, body=f"n{i}") for i in range(30)]
    for i, note in enumerate(notes):
        await Note.filter(id=note.id).update(created_at=newest - timedelta(seconds=i))
    only_notes = [await statements(5), await statements(20), await statements(20, total=True)]
    # Four more sources hold rows, all older than the notes: a page of notes costs what it did.
    await _force_times(await _mixed_items(pk, 40))
    behind_notes = [await statements(5), await statements(20), await statements(20, total=True)]
    assert only_notes == behind_notes == [(2, {"NOTE"}), (2, {"NOTE"}), (3, {"NOTE"})]
    # A page showing the five kinds: the keys, then the rows of each kind; the total count is one statement.
    assert await statements(100) == (1 + 5, {"NOTE", "INTERACTION", "FOLLOW_UP", "CHANGE", "HOLDING"})
    assert (await statements(100, total=True))[0] == 1 + 5 + 1
    assert (await statements(0, total=True))[0] == 1  # no page: only the count


async def _expected_order(customer_id: int) -> list[str]:
    """The reference: every item of the customer sorted by the cursor key (time, kind's rank, id), newest first."""
    keys = []
    for rank, source in enumerate(timeline_service.sources()):
        for row in await source.model.filter(**{source.customer_field: customer_id}):
            keys.append((getattr(row, source.time_field), rank, row.id, source.kind))
    keys.sort(reverse=True)
    return [encode_cursor([at, kind, pk]) for at, _, pk, kind in keys]


async def test_paging_equal_times_across_kinds_matches_the_reference_both_ways(gql, admin):
    _, token = admin
    customer = await create(gql, token)
    pk = (await Customer.get()).id
    await _force_times(await _mixed_items(pk, 150, seed=7, minutes=4))  # ~37 items share each time
    expected = await _expected_order(pk)
    assert len(expected) == 150

    async def page(**arguments) -> dict:
        data = await gql(PAGE % "totalCount", {"id": customer["id"], **arguments}, token=token)
        found = data["customer"]["timeline"]
        assert found["totalCount"] == 150
        return found

    forward, after = [], None
    while True:
        found = await page(first=7, after=after)
        forward += [e["cursor"] for e in found["edges"]]
        info = found["pageInfo"]
        assert info["hasPreviousPage"] is (after is not None)
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
    assert forward == expected

    backward, before = [], None
    while True:
        found = await page(last=7, before=before)
        backward = [e["cursor"] for e in found["edges"]] + backward
        info = found["pageInfo"]
        assert info["hasNextPage"] is (before is not None)
        if not info["hasPreviousPage"]:
            break
        before = info["startCursor"]
    assert backward == expected

    # Between two cursors, from either end.
    window = {"after": expected[40], "before": expected[90]}
    assert [e["cursor"] for e in (await page(first=9, **window))["edges"]] == expected[41:50]
    assert [e["cursor"] for e in (await page(last=9, **window))["edges"]] == expected[81:90]
    assert [e["cursor"] for e in (await page(first=100, **window))["edges"]] == expected[41:90]
    assert (await page(first=5, after=expected[-1]))["edges"] == []
    assert (await page(last=5, before=expected[0]))["edges"] == []
