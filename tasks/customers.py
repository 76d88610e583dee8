from services import access, customer_import, jobs

jobs.register_kind(customer_import.IMPORT_JOB, customer_import.import_csv, starters=access.CUSTOMER_WRITERS)
