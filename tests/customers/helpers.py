"""Shared pieces of the customer tests."""

from __future__ import annotations

from services.identity import resident_id_check_char

CUSTOMER_FIELDS = """id customerNo kind name gender birthDate idType idNumber phone email address occupation riskLevel
  kycStatus status branch preferredChannel tags completeness dataIssues { field message } version aum valueTier
  relationshipManager { username } consents { purpose channel granted source }"""
CREATE = f"""mutation($input: CreateCustomerInput!) {{ createCustomer(input: $input) {{
  customer {{ {CUSTOMER_FIELDS} }} errors {{ field message code }} }} }}"""
UPDATE = f"""mutation($input: UpdateCustomerInput!) {{ updateCustomer(input: $input) {{
  customer {{ {CUSTOMER_FIELDS} }} errors {{ field message code }} }} }}"""
GET = f"""query($id: ID!) {{ customer(id: $id) {{ {CUSTOMER_FIELDS} }} }}"""
HOLDING = """mutation($input: UpsertHoldingInput!) { upsertHolding(input: $input) {
  holding { id accountNo product balance currency status customer { id aum } } errors { field message code } } }"""


def resident_id(birth: str = "19850412", region: str = "110105", sequence: str = "123") -> str:
    """A valid resident ID; an odd last sequence digit makes a man, an even one a woman."""
    first17 = region + birth + sequence
    return first17 + resident_id_check_char(first17)


def person(**overrides) -> dict:
    return {
        "kind": "INDIVIDUAL",
        "name": "张伟",
        "idType": "RESIDENT_ID",
        "idNumber": resident_id(),
        "phone": "+86 138 1234 5678",
        "email": "Zhang.Wei@Example.COM",
        "address": "北京市朝阳区建国路88号",
        "occupation": "工程师",
        "riskLevel": "C3",
        "branch": "北京朝阳支行",
        **overrides,
    }


async def create(gql, token: str, **overrides) -> dict:
    result = (await gql(CREATE, {"input": person(**overrides)}, token=token))["createCustomer"]
    assert result["errors"] == [], result["errors"]
    return result["customer"]
