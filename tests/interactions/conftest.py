import pytest

from services import clock
from tests.customers.helpers import create


@pytest.fixture(autouse=True)
def _real_time():
    clock.reset()
    try:
        yield
    finally:
        clock.reset()


@pytest.fixture
async def customer(gql, admin) -> dict:
    return await create(gql, admin[1])
