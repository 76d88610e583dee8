"""The resolver of `Query.surveyStats`; its root field is declared in resolvers/surveys.py's `Query`."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from resolvers.common import caller_of
from schema.base import DateRange, require_pk
from schema.survey_stats import SurveyGroupBy, SurveyStatBucket
from services import survey_stats as survey_stats_service


async def survey_stats(
    info: Info, period: DateRange, group_by: SurveyGroupBy, template_id: strawberry.ID | None = None
) -> list[SurveyStatBucket]:
    # An id of anything but a survey template is NOT_FOUND; a template's id with no invitations gives no buckets.
    template_pk = require_pk(template_id, "SurveyTemplate", "templateId") if template_id is not None else None
    buckets = await survey_stats_service.stats(
        await caller_of(info), period.from_, period.to, group_by.value, template_id=template_pk
    )
    return [
        SurveyStatBucket(
            key=b.key,
            invited=b.invited,
            responses=b.responses,
            response_rate=b.response_rate,
            nps=b.nps,
            promoters=b.promoters,
            passives=b.passives,
            detractors=b.detractors,
            csat_average=b.csat_average,
        )
        for b in buckets
    ]
