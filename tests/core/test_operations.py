import logging

from models.jobs import Job, JobStatus


async def test_healthz(client):
    response = await client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_readyz_checks_database_and_broker(client):
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": True, "broker": True}}


async def test_readyz_is_503_when_the_database_is_gone(client, monkeypatch):
    import endpoints

    async def down() -> bool:
        return False

    monkeypatch.setattr(endpoints, "_database_ready", down)
    response = await client.get("/readyz")
    assert response.status_code == 503 and response.json()["checks"]["database"] is False


async def test_metrics_count_requests_errors_and_jobs(client, gql, admin):
    member, token = admin
    await Job.create(kind="AUDIT_EXPORT", status=JobStatus.FAILED, created_by=member)
    await gql("{ me { id } }", token=token)
    await gql.errors("{ nope }", token=token)
    text = (await client.get("/metrics")).text
    assert 'crm_http_requests_total{method="POST",route="/graphql",status="200"} 2.0' in text
    assert "crm_http_request_duration_seconds_bucket" in text
    assert 'crm_graphql_errors_total{code="GRAPHQL_VALIDATION_FAILED"} 1.0' in text
    assert 'crm_jobs{status="FAILED"} 1.0' in text and 'crm_jobs{status="QUEUED"} 0.0' in text


async def test_every_response_carries_a_request_id(client):
    generated = await client.get("/healthz")
    assert len(generated.headers["x-request-id"]) == 32
    given = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    unsafe = await client.get("/healthz", headers={"X-Request-ID": "bad id\nwith newline"})
    assert unsafe.headers["x-request-id"] != "bad id\nwith newline"


async def test_request_logs_carry_the_request_id(client, caplog):
    with caplog.at_level(logging.INFO, logger="crm.http"):
        await client.get("/healthz", headers={"X-Request-ID": "log-me-1"})
    record = next(r for r in caplog.records if r.name == "crm.http")
    assert record.request_id == "log-me-1" and record.status == 200 and record.path == "/healthz"


def test_json_log_lines(capsys):
    import json

    from core.logs import configure_logging, request_id_var

    configure_logging("INFO", json_lines=True)
    token = request_id_var.set("rid-7")
    try:
        logging.getLogger("crm.test").info("hello", extra={"path": "/x"})
    finally:
        request_id_var.reset(token)
        logging.getLogger().handlers.clear()
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["message"] == "hello" and line["request_id"] == "rid-7" and line["level"] == "INFO"
    assert line["path"] == "/x" and "time" in line


async def test_graphiql_is_served_without_a_cdn(client):
    from core.graphiql import graphiql_assets_present

    page = await client.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()
    assert "unpkg" not in page.text and "cdn" not in page.text.lower()
    if graphiql_assets_present():
        asset = await client.get("/static/graphiql/graphiql.min.js")
        assert asset.status_code == 200 and len(asset.content) > 100_000
