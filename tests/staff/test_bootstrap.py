from models.staff import Role, Staff
from services.staff import ensure_admin
from tests.conftest import make_staff


async def test_first_admin_is_created_only_when_no_staff_exists(app):
    created = await ensure_admin("Root", "a-long-password-1")
    assert created.username == "root" and created.role == Role.ADMIN
    assert await ensure_admin("other", "a-long-password-1") is None
    assert await Staff.all().count() == 1


async def test_no_bootstrap_once_staff_exist(app):
    await make_staff(Role.ANALYST)
    assert await ensure_admin("root", "a-long-password-1") is None


async def test_the_app_bootstraps_its_admin_at_start(settings):
    from asgi_lifespan import LifespanManager

    from app import create_app
    from core import db
    from tests.conftest import with_overrides
    from tests.database import empty_all_tables

    await db.init_orm(settings.database_url)
    await empty_all_tables()
    await db.close_orm()
    configured = with_overrides(settings, admin_username="chief", admin_password="chief-password-1")
    async with LifespanManager(create_app(configured)):
        assert (await Staff.get(username="chief")).role == Role.ADMIN
