from services import audit, jobs

jobs.register_kind(audit.EXPORT_JOB, audit.export_csv)
