# syntax=docker/dockerfile:1
#
# Production image of the bank CRM. One image, several roles, chosen by the command:
#   crm serve --host 0.0.0.0 --port 8000   (default)   crm worker --threads 8
#   crm scheduler (exactly one)                         crm migrate (once per release, before serve)
# GraphiQL is development-only, so there is no Node stage and no static/ directory here.

# ---- build: a virtualenv with the project and its dependencies ------------------------------------
FROM python:3.11-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Dependencies first, read from pyproject.toml, so a code-only change reuses this layer.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
 && pip install --no-cache-dir -r /tmp/requirements.txt

# The project itself (non-editable): installs the `crm` console script.
COPY app.py cli.py endpoints.py ./
COPY core/ core/
COPY models/ models/
COPY services/ services/
COPY schema/ schema/
COPY resolvers/ resolvers/
COPY tasks/ tasks/
COPY pages/ pages/
RUN pip install --no-cache-dir .

# ---- runtime -------------------------------------------------------------------------------------
FROM python:3.11-slim

# PYTHONPATH=/app: the code runs from /app, which also holds `migrations` (Tortoise imports it by
# name and it is not part of the installed distribution) and schema.graphql next to app.py.
ENV CRM_ENV=production \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    PATH=/opt/venv/bin:$PATH

RUN groupadd --system --gid 10001 crm \
 && useradd --system --uid 10001 --gid crm --home-dir /app --no-create-home --no-log-init \
        --shell /usr/sbin/nologin crm

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
# Owned by root and read-only for the service user.
COPY app.py cli.py endpoints.py schema.graphql ./
COPY core/ core/
COPY models/ models/
COPY services/ services/
COPY schema/ schema/
COPY resolvers/ resolvers/
COPY tasks/ tasks/
COPY pages/ pages/
COPY migrations/ migrations/
# Byte-compile now: the service user cannot write __pycache__ under /app.
# var/ is the only writable directory (the SQLite default, sqlite://var/crm.sqlite3, for a quick
# `docker run`; real deployments set CRM_DATABASE_URL to PostgreSQL).
RUN python -m compileall -q /app \
 && install -d -o crm -g crm -m 0750 /app/var

USER 10001:10001

EXPOSE 8000

# Liveness only (/readyz also checks the database and the broker). slim has no curl: use urllib.
# Only `serve` listens on 8000: docker-compose.yml disables this check for the other commands.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

ENTRYPOINT ["crm"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
