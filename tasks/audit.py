from services import access, audit, jobs

jobs.register_kind(audit.EXPORT_JOB, audit.export_csv, starters=access.AUDIT_READERS)
