"""argon2 runs in worker threads: a burst of sign-ins does not stall the event loop (other requests, pings,
subscriptions keep being served while passwords are hashed and verified)."""

from __future__ import annotations

import threading

from argon2 import PasswordHasher

from models.staff import Role
from services import auth
from services.access import COMMAND_LINE
from services.staff import StaffChanges, update
from tests.conftest import PASSWORD, make_staff

LOGIN = """mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) { token } }"""


async def test_verification_and_hashing_run_off_the_event_loop_thread(gql, app, monkeypatch):
    loop_thread = threading.current_thread()
    threads: list[threading.Thread] = []
    verify = auth._verify_now

    class Recording(PasswordHasher):
        def hash(self, password, *, salt=None):
            threads.append(threading.current_thread())
            return super().hash(password, salt=salt)

    monkeypatch.setattr(auth, "_hasher", Recording(time_cost=1, memory_cost=8, parallelism=1))
    monkeypatch.setattr(auth, "_verify_now", lambda h, p: threads.append(threading.current_thread()) or verify(h, p))
    member = await make_staff(Role.ANALYST)  # hashes
    assert (await gql(LOGIN, {"u": member.username, "p": PASSWORD}))["login"]["token"]  # verifies
    await gql(LOGIN, {"u": "nobody-at-all", "p": PASSWORD})  # verifies the dummy hash
    await update(COMMAND_LINE, member.id, StaffChanges(password="another-secret-77"))  # hashes
    # 2 hashes, 2 verifications and the dummy hash, all in the argon2 threads.
    assert len(threads) == 5 and loop_thread not in threads
    assert all(t.name.startswith("argon2") for t in threads)
