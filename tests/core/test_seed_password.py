"""`crm seed`: the demo staff's password is printed once; a second seed says how to set a new one, and
`seed --password` sets it for demo staff who exist already."""

from __future__ import annotations

from models.audit import AuditEntry
from models.staff import Staff
from services import auth
from services.seed import DEMO_STAFF, seed
from tests.core.test_command_line import crm


async def test_seed_password_resets_existing_demo_staff(app):
    first = await seed()
    assert first[0].startswith(f"created {len(DEMO_STAFF)} demo staff, password: ")
    again = await seed()
    assert len(again) == 1 and "nothing to do" in again[0] and "seed --password" in again[0]

    rm = await Staff.get(username="rm.demo")
    rm.failed_logins = 5
    await rm.save()
    reset = await seed(password="a-new-demo-password-7")
    assert reset == [f"set the password of {len(DEMO_STAFF)} existing demo staff to the one given"]
    for username, *_ in DEMO_STAFF:
        member = await Staff.get(username=username)
        assert auth._verify_now(member.password_hash, "a-new-demo-password-7"), username
    assert (await Staff.get(username="rm.demo")).failed_logins == 0
    assert await AuditEntry.filter(action="staff.update").count() == len(DEMO_STAFF)


def test_the_command_line(tmp_path):
    env = {"CRM_DATABASE_URL": f"sqlite://{tmp_path}/crm.sqlite3"}
    assert crm("migrate", env=env).returncode == 0
    created = crm("seed", env=env)
    assert created.returncode == 0 and "password: " in created.stdout
    again = crm("seed", env=env)
    assert "nothing to do" in again.stdout and "crm seed --password NEW" in again.stdout
    weak = crm("seed", "--password", "short", env=env)
    assert weak.returncode == 1 and weak.stderr.startswith("crm seed: Password must be")
    reset = crm("seed", "--password", "a-new-demo-password-7", env=env)
    assert reset.returncode == 0, reset.stderr
    assert "set the password of 9 existing demo staff" in reset.stdout


def test_generated_passwords_always_pass_the_password_rule(monkeypatch):
    from services import staff as staff_service

    letters_first = iter(["OnlyLettersHereAbc", "Mixed-Letters_7ab"])  # the first would be refused
    monkeypatch.setattr(staff_service.secrets, "token_urlsafe", lambda n: next(letters_first))
    assert staff_service.generated_password() == "Mixed-Letters_7ab"
