"""GraphQL types of survey statistics (`surveyStats`).

Kept apart from schema/surveys.py (the surveys domain's types): no Node types or loaders here, so nothing needs
discovering; the types are reached from the root field `Query.surveyStats` (resolvers/surveys.py)."""

from __future__ import annotations

from enum import Enum

import strawberry


@strawberry.enum
class SurveyGroupBy(Enum):
    TEMPLATE = "TEMPLATE"
    CHANNEL = "CHANNEL"
    BRANCH = "BRANCH"
    VALUE_TIER = "VALUE_TIER"
    MONTH = "MONTH"


@strawberry.type
class SurveyStatBucket:
    key: str = strawberry.field(
        description=(
            'TEMPLATE: "<template name> #<template id>"; CHANNEL: the channel; BRANCH: the customer\'s branch '
            '("UNASSIGNED" when none); VALUE_TIER: the customer\'s value tier; MONTH: "YYYY-MM" in bank time.'
        )
    )
    invited: int = strawberry.field(description="Invitations created in the period, except suppressed ones.")
    responses: int
    response_rate: float
    nps: float | None = strawberry.field(
        description="%promoters - %detractors among the NPS answers (-100..100), one decimal; null when none."
    )
    promoters: int
    passives: int
    detractors: int
    csat_average: float | None
