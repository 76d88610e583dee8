"""The surveys domain's work for the workers: the SURVEY_CAMPAIGN job (services.survey_campaigns)."""

from services import access, jobs, survey_campaigns

jobs.register_kind(survey_campaigns.CAMPAIGN_JOB, survey_campaigns.run, starters=access.CAMPAIGN_LAUNCHERS)
