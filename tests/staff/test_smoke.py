async def test_me_with_token(gql, admin):
    member, token = admin
    data = await gql("{ me { username role } }", token=token)
    assert data["me"] == {"username": member.username, "role": "ADMIN"}
