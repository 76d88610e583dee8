from services import access, complaint_stats, complaints, jobs
from tasks.broker import actor, every, runtime

jobs.register_kind(
    complaint_stats.REPORT_JOB, complaint_stats.complaint_report, starters=access.COMPLAINT_STATS_READERS
)


@actor(
    queue_name="default",
    max_retries=3,
    schedule=every(minutes=lambda settings: settings.of(complaints.ComplaintSettings).sla_monitor_minutes),
)
async def monitor_complaint_sla() -> None:
    """The periodic SLA monitor; it records each event once however often or concurrently it runs."""
    report = await complaints.monitor_sla()
    pubsub = runtime().pubsub
    for complaint_id in {*report.at_risk, *report.breached}:
        for channel in (complaints.channel_for(complaint_id), complaints.channel_for_all()):
            await pubsub.publish(channel, {"id": complaint_id})
