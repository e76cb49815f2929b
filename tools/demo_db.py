"""The demo database of tools/run and the databases of the bench/ scripts."""

import os
import subprocess
import sys

from flectra_run import flectra_command, free_port, run_logged
from flectra_setup import (
    MODULE,
    default_addons_path,
    flectra_bin,
    flectra_python,
    module_addons_dir,
)
from postgres import _pg_env, database_exists, drop_database, ensure_postgres, module_installed


def ensure_demo_database(bin_path, addons_path, db, rebuild=False):
    """Build `db` with the add-on and demo data unless it is already there."""
    if rebuild:
        drop_database(db)
    if database_exists(db) and module_installed(db):
        print("Reusing database %s (tools/run --rebuild starts afresh)." % db)
        return True
    print("Building database %s with %s and demo data ..." % (db, MODULE), flush=True)
    log_path = os.path.join("/tmp", "%s-build.log" % db)
    run_logged(
        flectra_command(
            bin_path,
            addons_path,
            db,
            "--init=%s" % MODULE,
            "--stop-after-init",
            "--http-port=%d" % free_port(),
            "--max-cron-threads=0",
            "--log-level=info",
        ),
        log_path,
    )
    if not module_installed(db):
        return False
    print("Database %s is ready (build log: %s)." % (db, log_path))
    return True


def reexec_bench_under_flectra(db, script, max_cron_threads=None):
    """For bench/ scripts: build ``db`` (the add-on, without demo data) once,
    then run ``script`` again under Flectra's own Python, with the addons path
    and the flectra command in WSOH_BENCH_ADDONS and WSOH_BENCH_BIN, and
    WSOH_BENCH_INNER set. Never returns."""
    bin_path = flectra_bin()
    ensure_postgres()
    addons = "%s,%s" % (module_addons_dir(), default_addons_path(bin_path))
    if not (database_exists(db) and module_installed(db)):
        drop_database(db)  # what an interrupted build left
        print("Building %s (install without demo data) ..." % db, flush=True)
        extra = [] if max_cron_threads is None else ["--max-cron-threads=%d" % max_cron_threads]
        cmd = flectra_command(
            bin_path,
            addons,
            db,
            "-i",
            MODULE,
            "--without-demo=all",
            "--stop-after-init",
            "--http-port=%d" % free_port(),
            *extra,
        )
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd="/tmp")
    env = dict(_pg_env(), WSOH_BENCH_ADDONS=addons, WSOH_BENCH_INNER="1", WSOH_BENCH_BIN=bin_path)
    python = flectra_python(bin_path)
    os.execve(python, [python, script] + sys.argv[1:], env)
