"""The domain list (core/domains.py) is what every central registry discovers; these tests fail when a
domain module exists that the list does not name, or when a registry misses what a domain declares."""

from __future__ import annotations

import pkgutil
from pathlib import Path

import pytest

from core import domains
from core.db import MODEL_MODULES
from schema import loaders
from schema.base import node_types
from schema.root import Mutation, Query, Subscription
from services import jobs, timeline
from tasks import broker

ROOT = Path(__file__).resolve().parents[2]
# Modules of the layers that belong to no domain: the shared machinery each layer's domains use.
SHARED = {
    "schema": {
        "base",
        "build",
        "context",
        "conventions",
        "loaders",
        "permissions",
        "protection",
        "execution",
        "root",
        "timeline",
        "survey_stats",  # surveyStats' types, reached from Query.surveyStats in resolvers/surveys.py
    },
    "resolvers": {"common", "filters", "nodes", "survey_stats"},  # survey_stats: Query.surveyStats' resolver
    "tasks": {"broker", "scheduler"},
    "models": set(),
}


@pytest.mark.parametrize("layer", sorted(SHARED))
def test_every_module_of_a_layer_is_a_domain_or_shared_machinery(layer):
    names = {m.name for m in pkgutil.iter_modules([str(ROOT / layer)])}
    unlisted = names - set(domains.DOMAINS) - SHARED[layer]
    assert unlisted == set(), f"add {sorted(unlisted)} to DOMAINS in core/domains.py"


# Domains that store nothing in tables of their own (rate limits live in Redis or in the process).
WITHOUT_TABLES = {"limits"}


def test_every_domain_has_models_and_services():
    assert [f"models.{d}" for d in domains.DOMAINS if d not in WITHOUT_TABLES] == MODEL_MODULES
    assert domains.module_names("services") == [f"services.{d}" for d in domains.DOMAINS]


def test_an_unknown_layer_is_refused():
    with pytest.raises(ValueError, match="unknown layer"):
        domains.module_names("views")


def test_each_domain_contributes_its_root_fields():
    query = {f.python_name for f in Query.__strawberry_definition__.fields}
    mutation = {f.python_name for f in Mutation.__strawberry_definition__.fields}
    subscription = {f.python_name for f in Subscription.__strawberry_definition__.fields}
    assert {"node", "nodes", "me", "jobs", "audit_log", "customers", "interactions", "follow_ups"} <= query
    assert {"complaints", "complaint_stats"} <= query
    assert {"login", "create_customer", "log_interaction", "create_follow_up", "add_note"} <= mutation
    assert {"file_complaint", "export_audit_log"} <= mutation
    assert subscription == {"job_progress", "complaint_updated"}


def test_every_node_type_is_found_and_fetches_its_own_ids():
    types = node_types()
    assert set(types) == {
        "Staff", "Job", "AuditEntry", "Customer", "ProductHolding", "Interaction", "FollowUp", "Note", "Complaint",
        "SurveyTemplate", "SurveyInvitation", "SurveyResponse", "Notification", "Segment",
    }  # fmt: skip
    assert all("resolve_nodes" in vars(t) for t in types.values()), "each Node type says how to fetch its ids"


def test_registries_hold_what_the_domains_declare(settings):
    broker.declare_all()
    assert set(jobs.kinds()) == {
        "AUDIT_EXPORT", "IMPORT_CUSTOMERS", "COMPLAINT_REPORT", "SURVEY_CAMPAIGN", "RECOMPUTE_PORTRAITS",
    }  # fmt: skip
    assert set(timeline.kinds()) == {
        "INTERACTION", "FOLLOW_UP", "NOTE", "COMPLAINT", "COMPLAINT_EVENT", "CHANGE", "HOLDING",
        "SURVEY_INVITATION", "SURVEY_RESPONSE",
    }  # fmt: skip
    assert {name for name, _ in broker.schedules(settings)} == {
        "requeue_stale_jobs", "monitor_complaint_sla", "purge_expired_tokens", "requeue_lost_notifications",
        "requeue_stalled_batches", "sweep_stale_portraits", "recompute_all_portraits", "requeue_lost_jobs",
    }  # fmt: skip
    for name in ("staff", "customer", "complaint", "holdings", "tags", "consents", "notes", "complaint_events"):
        assert hasattr(loaders.Loaders(), name), name


def test_a_loader_name_is_registered_once():
    with pytest.raises(ValueError, match="registered already"):
        loaders.register("staff", loaders.grouped(object, "id"))


def test_a_missing_loader_says_where_to_register_it():
    with pytest.raises(AttributeError, match="register it in its domain's schema module"):
        _ = loaders.Loaders().no_such_loader
