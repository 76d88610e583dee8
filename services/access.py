"""Who is calling, and the role table: every set of roles that may do something, named for what it allows.

GraphQL fields declare these sets (schema/permissions.py, schema/conventions.py) and the services check the
same sets, so the two cannot disagree; tests/core/test_roles.py walks the table against the schema.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.staff import Role, Staff
from services.errors import forbidden

R = Role

ALL_ROLES = frozenset(Role)
# Staff accounts: create, change, deactivate.
STAFF_ADMINS = frozenset({R.ADMIN})
# The audit log and its export.
AUDIT_READERS = frozenset({R.ADMIN, R.MANAGER, R.AUDITOR})
# See every job, not only the ones they started.
JOB_OVERSEERS = frozenset({R.ADMIN, R.MANAGER, R.AUDITOR})
# Limited to the customers of their own branch (when they have one); everyone else is bank-wide.
BRANCH_BOUND = frozenset({R.RELATIONSHIP_MANAGER, R.SERVICE_AGENT})
# See personal data (ID number, phone, e-mail, address, account numbers) unmasked.
PII_READERS = frozenset({R.ADMIN, R.MANAGER, R.RELATIONSHIP_MANAGER, R.COMPLAINT_HANDLER})
# Create and change customers and their holdings, import customers.
CUSTOMER_WRITERS = frozenset({R.ADMIN, R.MANAGER, R.RELATIONSHIP_MANAGER})
# Record a customer's consents (also at the service desk).
CONSENT_WRITERS = CUSTOMER_WRITERS | {R.SERVICE_AGENT}
# Merge duplicate customers.
CUSTOMER_MERGERS = frozenset({R.ADMIN, R.MANAGER})
# Erase a customer (PIPL).
CUSTOMER_ERASERS = frozenset({R.ADMIN})
# Export everything held about a customer (PIPL access request).
CUSTOMER_EXPORTERS = CUSTOMER_WRITERS
# Log and resolve consultations and other interactions.
INTERACTION_WRITERS = frozenset({R.ADMIN, R.MANAGER, R.RELATIONSHIP_MANAGER, R.SERVICE_AGENT})
# Open and update follow-ups.
FOLLOW_UP_WRITERS = frozenset({R.ADMIN, R.MANAGER, R.RELATIONSHIP_MANAGER, R.SERVICE_AGENT, R.COMPLAINT_HANDLER})
# Complete or change anyone's follow-up, not only their own or their department's.
FOLLOW_UP_SUPERVISORS = frozenset({R.ADMIN, R.MANAGER})
# Add notes to customers and complaints.
NOTE_WRITERS = frozenset({R.ADMIN, R.MANAGER, R.RELATIONSHIP_MANAGER, R.SERVICE_AGENT, R.COMPLAINT_HANDLER})
# File a complaint for a customer.
COMPLAINT_FILERS = frozenset({R.ADMIN, R.MANAGER, R.RELATIONSHIP_MANAGER, R.SERVICE_AGENT, R.COMPLAINT_HANDLER})
# Move complaints through their workflow (acknowledge, assign, start, escalate, extend, resolve, close ...).
COMPLAINT_HANDLERS = frozenset({R.ADMIN, R.MANAGER, R.COMPLAINT_HANDLER})
# Approve the second (60-day) extension of a complaint's deadline.
EXTENSION_APPROVERS = frozenset({R.ADMIN, R.MANAGER})
# Complaint statistics and the regulator's complaint report.
COMPLAINT_STATS_READERS = frozenset({R.ADMIN, R.MANAGER, R.COMPLAINT_HANDLER, R.ANALYST, R.AUDITOR})
# Create and retire survey templates (name, active, validDays; never the questions).
SURVEY_TEMPLATE_EDITORS = frozenset({R.ADMIN, R.MANAGER, R.ANALYST})
# Send one customer a survey.
SURVEY_SENDERS = frozenset({R.ADMIN, R.MANAGER, R.RELATIONSHIP_MANAGER, R.SERVICE_AGENT, R.ANALYST})
# Launch a survey campaign to a segment or a filter of customers.
CAMPAIGN_LAUNCHERS = frozenset({R.ADMIN, R.MANAGER, R.ANALYST})
# Read survey templates, invitations, responses and survey statistics.
SURVEY_READERS = frozenset({R.ADMIN, R.MANAGER, R.RELATIONSHIP_MANAGER, R.SERVICE_AGENT, R.ANALYST, R.AUDITOR})
# Send a FAILED notification again once its channel is fixed.
NOTIFICATION_RETRIERS = frozenset({R.ADMIN, R.MANAGER})
# Recompute portraits on demand (some customers, a segment, or all of them) as a job.
PORTRAIT_RECOMPUTERS = frozenset({R.ADMIN, R.MANAGER, R.ANALYST})
# Read customer portraits and mine them: prospects for a product, the distribution of value tiers (docs/DOMAIN.md:
# "read portraits" for relationship managers, within their branch; not for service agents or complaint handlers).
PORTRAIT_READERS = frozenset({R.ADMIN, R.MANAGER, R.RELATIONSHIP_MANAGER, R.ANALYST, R.AUDITOR})
# Create, change and delete customer segments (saved customer filters).
SEGMENT_EDITORS = frozenset({R.ADMIN, R.MANAGER, R.ANALYST})
# Read segments with their live size and members (members as the customers list shows them to the reader).
SEGMENT_READERS = SEGMENT_EDITORS | {R.AUDITOR}

# Every named set, for the documentation and the test that walks the table against the schema.
ROLE_TABLE: dict[str, frozenset[Role]] = {
    name: value for name, value in dict(globals()).items() if name.isupper() and isinstance(value, frozenset)
}


def describe(roles: frozenset[Role]) -> str:
    """The roles of a set in the order of the Role enum, for messages: "ADMIN, MANAGER"."""
    return ", ".join(r.value for r in Role if r in roles)


def not_allowed(roles: frozenset[Role]) -> str:
    """The FORBIDDEN message: it names who may do the thing."""
    if roles == ALL_ROLES:
        return "You are not allowed to do this; it needs a signed-in staff member (any role)"
    return f"You are not allowed to do this; it needs one of the roles {describe(roles)}"


@dataclass(frozen=True)
class Caller:
    """The staff member behind a request (None for public operations) and where it came from."""

    staff: Staff | None = None
    request_id: str | None = None
    ip: str | None = None
    # The operator at the `crm` command line, who already holds the database: allowed everything.
    operator: bool = False

    @property
    def role(self) -> Role | None:
        return self.staff.role if self.staff else None


COMMAND_LINE = Caller(request_id="command-line", operator=True)


def require_role(caller: Caller, roles: frozenset[Role]) -> Staff | None:
    """The calling staff member when their role is allowed (None for the command-line operator)."""
    if caller.operator:
        return None
    if caller.staff is None or caller.staff.role not in roles:
        raise forbidden(not_allowed(roles))
    return caller.staff
