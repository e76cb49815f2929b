"""Start Flectra: the command line every tool uses (our database, our role,
loopback only), and a run with its whole log in a file that always ends
with a verdict (a Flectra that does not exit is stopped, with its threads'
stacks)."""

import os
import re
import signal
import socket
import subprocess
import threading
import time

from flectra_log import show_progress
from postgres import DB_HOST, DB_PASSWORD, DB_PORT, DB_USER


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def flectra_command(bin_path, addons_path, db, *extra):
    """The common part of every Flectra call: our database, our role, loopback only."""
    return [
        bin_path,
        "--addons-path=%s" % addons_path,
        "--database=%s" % db,
        "--db_host=%s" % DB_HOST,
        "--db_port=%s" % DB_PORT,
        "--db_user=%s" % DB_USER,
        "--db_password=%s" % DB_PASSWORD,
        "--db-filter=^%s$" % db,
        "--http-interface=127.0.0.1",
        "--no-database-list",
    ] + list(extra)


def _stop_group(pgid, sig=signal.SIGTERM):
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# Flectra's last line after its tests: "... when loading database '...'", or
# that of tools/second_pass.py: "... with every module loaded, on database '...'".
TESTS_REPORTED = re.compile(r"when loading database |with every module loaded, on database ")
# How long Flectra may take to exit once its tests have reported; a run of
# ours never takes more than a few seconds.
EXIT_GRACE = 120
# A whole run that takes longer than this is stopped (CI allows 90 minutes
# for both suites together).
TIME_LIMIT = 2400
# run_logged's exit code when it had to stop Flectra itself.
STOPPED = 124


def _stop_hung(proc, why):
    """Stop a Flectra that does not end, with its threads' stacks in its log
    first (SIGQUIT makes Flectra log them) to show what it waited for."""
    print("  %s: its threads' stacks go to the log, then it is stopped." % why, flush=True)
    try:
        os.kill(proc.pid, signal.SIGQUIT)
    except ProcessLookupError:
        return
    time.sleep(5)
    _stop_group(proc.pid, signal.SIGKILL)
    proc.wait()


def run_logged(cmd, log_path, env=None, time_limit=TIME_LIMIT):
    """Run Flectra with its whole log in log_path, echoing only the progress.

    Flectra runs in a process group of its own: a browser it leaves behind
    (when it dies mid-tour) would keep the log pipe open, and us waiting,
    for ever; once Flectra has exited, what is left of its group is stopped.
    A Flectra that does not exit EXIT_GRACE seconds after reporting its
    tests, or runs over time_limit, is stopped, and STOPPED returned: a run
    always ends with a verdict instead of hanging its caller.
    """
    started = time.time()
    reported = []
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            cwd="/tmp",
            env=env,
            start_new_session=True,
        )

        def copy():
            for line in proc.stdout:
                log.write(line)
                log.flush()
                show_progress(line)
                if TESTS_REPORTED.search(line):
                    reported.append(time.time())

        reader = threading.Thread(target=copy, daemon=True)
        reader.start()
        rc = None
        try:
            while rc is None:
                try:
                    rc = proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    if reported and time.time() - reported[0] > EXIT_GRACE:
                        _stop_hung(proc, "Flectra did not exit %d s after its tests" % EXIT_GRACE)
                        rc = STOPPED
                    elif time.time() - started > time_limit:
                        _stop_hung(proc, "Flectra ran over %d s" % time_limit)
                        rc = STOPPED
        except BaseException:  # Ctrl-C reaches only us now: stop Flectra too
            _stop_group(proc.pid)
            raise
        reader.join(10)
        if reader.is_alive():
            _stop_group(proc.pid)
            reader.join(10)
        return rc
