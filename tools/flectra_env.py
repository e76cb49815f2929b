"""The tools' one import (``import flectra_env as fe``): Flectra and
PostgreSQL found and driven, without installing either. Each job has a
module of its own:

- flectra_setup: the `flectra` command, its Python and add-ons;
- postgres: the server, our role, statements as that role;
- flectra_log: reading Flectra's log;
- flectra_run: the command line, and running Flectra to a verdict;
- demo_db: the demo and benchmark databases.

Standard library only: these scripts run with any python3, Flectra runs
with its own interpreter.
"""

from demo_db import ensure_demo_database, reexec_bench_under_flectra  # noqa: F401
from flectra_log import LOG_RECORD, log_records, show_progress  # noqa: F401
from flectra_run import (  # noqa: F401
    EXIT_GRACE,
    STOPPED,
    TESTS_REPORTED,
    TIME_LIMIT,
    flectra_command,
    free_port,
    run_logged,
)
from flectra_setup import (  # noqa: F401
    CACHE,
    MODULE,
    NO_FLECTRA,
    REPO,
    SetupError,
    default_addons_path,
    fail,
    flectra_bin,
    flectra_python,
    module_addons_dir,
)
from postgres import (  # noqa: F401
    DB_HOST,
    DB_PASSWORD,
    DB_PORT,
    DB_USER,
    NO_POSTGRES,
    _pg_env,
    database_exists,
    drop_database,
    ensure_postgres,
    module_installed,
    psql,
)
