"""Find the Flectra and PostgreSQL this project runs on, without installing either.

Shared by tools/run, tools/test and tools/update-pot. Standard library only:
these scripts run with any python3, Flectra runs with its own interpreter.
"""
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

MODULE = "website_sale_order_handling"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

NO_FLECTRA = (
    "Flectra 2.0 was not found: install it so that a `flectra` command is on PATH, "
    "or set FLECTRA_BIN to its path."
)
NO_POSTGRES = (
    "PostgreSQL was not found: install a PostgreSQL server (psql and pg_ctlcluster) "
    "or point PGHOST/PGPORT at a running one."
)

# The role the tools connect as: Flectra refuses to run as `postgres`.
CACHE = os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), MODULE
)

DB_HOST = os.environ.get("PGHOST", "127.0.0.1")
DB_PORT = os.environ.get("PGPORT", "5432")
DB_USER = os.environ.get("PGUSER", "wsoh")
DB_PASSWORD = os.environ.get("PGPASSWORD", "wsoh")


class SetupError(Exception):
    """A missing prerequisite, said in one sentence to the user."""


def fail(message, code=2):
    print(message, file=sys.stderr)
    sys.exit(code)


def flectra_bin():
    path = os.environ.get("FLECTRA_BIN") or shutil.which("flectra")
    if not path or not os.access(path, os.X_OK):
        raise SetupError(NO_FLECTRA)
    return path


def flectra_python(bin_path):
    """The interpreter behind the `flectra` script (its shebang), if it is Python."""
    with open(bin_path, "rb") as script:
        first = script.readline().decode("utf-8", "replace").strip()
    if not first.startswith("#!"):
        return None
    parts = first[2:].split()
    if parts and os.path.basename(parts[0]) == "env":
        parts = parts[1:]
    if parts and "python" in os.path.basename(parts[0]):
        return shutil.which(parts[0]) or parts[0]
    return None


def default_addons_path(bin_path):
    """Flectra's own addons path, to which ours is prepended."""
    if os.environ.get("FLECTRA_ADDONS_PATH"):
        return os.environ["FLECTRA_ADDONS_PATH"]
    python = flectra_python(bin_path)
    if not python:
        raise SetupError(
            "Cannot tell where Flectra's add-ons live: set FLECTRA_ADDONS_PATH "
            "to its comma-separated addons path."
        )
    code = (
        "import warnings; warnings.simplefilter('ignore');"
        "from flectra.tools import config; config.parse_config([]);"
        "print(config['addons_path'])"
    )
    out = subprocess.run(
        [python, "-c", code], capture_output=True, text=True, check=False
    )
    if out.returncode != 0 or not out.stdout.strip():
        raise SetupError(
            "The `flectra` command was found but its Python cannot import flectra: "
            "check the installation or set FLECTRA_ADDONS_PATH."
        )
    return out.stdout.strip().splitlines()[-1]


def module_addons_dir():
    """A folder holding this repository under the module's technical name.

    The repository root is the add-on, but a clone's folder can have any name,
    and Flectra finds add-ons by folder name: link it from a cache folder
    (one per clone, so two clones never shadow each other).
    """
    if os.path.basename(REPO) == MODULE:
        return os.path.dirname(REPO)
    digest = hashlib.sha1(REPO.encode()).hexdigest()[:10]
    folder = os.path.join(CACHE, "addons-%s" % digest)
    link = os.path.join(folder, MODULE)
    os.makedirs(folder, exist_ok=True)
    if os.path.realpath(link) != REPO:
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(REPO, link)
    return folder


def _pg_env():
    env = dict(os.environ)
    env.update(PGHOST=DB_HOST, PGPORT=DB_PORT, PGUSER=DB_USER, PGPASSWORD=DB_PASSWORD)
    return env


def _port_open(host, port):
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


def _as_postgres(sql):
    """Run SQL as the cluster's superuser through the local socket (root only)."""
    runner = shutil.which("runuser") or shutil.which("su")
    if os.geteuid() != 0 or not runner:
        return False
    if os.path.basename(runner) == "runuser":
        cmd = [runner, "-u", "postgres", "--", "psql", "-X", "-q", "-c", sql]
    else:
        cmd = [runner, "postgres", "-c", "psql -X -q -c %s" % _shell_quote(sql)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd="/").returncode == 0


def _shell_quote(text):
    return "'" + text.replace("'", "'\"'\"'") + "'"


def ensure_postgres(log=print):
    """Start the local cluster if it is down, and make sure our role exists."""
    if not shutil.which("psql"):
        raise SetupError(NO_POSTGRES)
    if not _port_open(DB_HOST, DB_PORT):
        if DB_HOST not in ("127.0.0.1", "localhost") or not shutil.which("pg_lsclusters"):
            raise SetupError(
                "PostgreSQL does not answer on %s:%s: start it first." % (DB_HOST, DB_PORT)
            )
        clusters = subprocess.run(
            ["pg_lsclusters", "--no-header"], capture_output=True, text=True
        ).stdout.split()
        if len(clusters) < 2:
            raise SetupError(NO_POSTGRES)
        log("Starting PostgreSQL cluster %s/%s ..." % (clusters[0], clusters[1]))
        subprocess.run(["pg_ctlcluster", clusters[0], clusters[1], "start"], check=False)
        for _ in range(50):
            if _port_open(DB_HOST, DB_PORT):
                break
            subprocess.run(["sleep", "0.2"])
        else:
            raise SetupError("PostgreSQL did not start: see its log under /var/log/postgresql.")
    if psql("SELECT 1", db="postgres", check=False) is None:
        created = _as_postgres(
            "CREATE ROLE %s LOGIN CREATEDB PASSWORD '%s'" % (DB_USER, DB_PASSWORD)
        )
        if not created or psql("SELECT 1", db="postgres", check=False) is None:
            raise SetupError(
                "Cannot connect to PostgreSQL as role %r: create it with CREATEDB "
                "or set PGUSER/PGPASSWORD to one that exists." % DB_USER
            )


def psql(sql, db="postgres", check=True):
    """Run one statement as our role; the output, or None on failure."""
    out = subprocess.run(
        ["psql", "-X", "-q", "-t", "-A", "-d", db, "-c", sql],
        capture_output=True,
        text=True,
        env=_pg_env(),
    )
    if out.returncode != 0:
        if check:
            raise SetupError("PostgreSQL refused: %s" % out.stderr.strip())
        return None
    return out.stdout.strip()


def database_exists(name):
    return psql("SELECT 1 FROM pg_database WHERE datname = '%s'" % name) == "1"


def drop_database(name):
    psql('DROP DATABASE IF EXISTS "%s"' % name, check=False)


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


LOG_RECORD = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ \d+ (?P<level>[A-Z?]+) (?P<db>\S+) "
    r"(?P<logger>[^:\s]+): (?P<msg>.*)$"
)


def log_records(path):
    """Yield (level, logger, text) for each record of a Flectra log, tracebacks included."""
    current = None
    with open(path, encoding="utf-8", errors="replace") as log:
        for line in log:
            match = LOG_RECORD.match(line)
            if match:
                if current:
                    yield current
                current = [match["level"], match["logger"], line]
            elif current:
                current[2] += line
    if current:
        yield current


def show_progress(line):
    """Echo the few log lines that tell a person where a long run is."""
    match = LOG_RECORD.match(line)
    if not match:
        return
    msg = match["msg"].strip()
    module = re.match(r"Loading module (\S+) \((\d+)/(\d+)\)", msg)
    if module:
        print("  loading %s (%s/%s)" % module.groups(), flush=True)
    elif msg.startswith("Starting ") and msg.endswith(" ..."):
        print("  test %s" % msg[len("Starting "):-4], flush=True)
    elif msg.startswith("Starting post tests"):
        print("  post-install tests", flush=True)
    elif msg.startswith("Starting the second pass"):
        print("  second pass: the at_install tests, every module loaded", flush=True)
    elif match["level"] in ("ERROR", "CRITICAL"):
        print("  %s %s" % (match["level"], msg[:200]), flush=True)


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
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            errors="replace", cwd="/tmp", env=env, start_new_session=True,
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


def module_installed(db):
    state = psql(
        "SELECT state FROM ir_module_module WHERE name = '%s'" % MODULE, db=db, check=False
    )
    return state == "installed"


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
            bin_path, addons_path, db, "--init=%s" % MODULE, "--stop-after-init",
            "--http-port=%d" % free_port(), "--max-cron-threads=0", "--log-level=info",
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
        cmd = flectra_command(bin_path, addons, db, "-i", MODULE, "--without-demo=all",
                              "--stop-after-init", "--http-port=%d" % free_port(), *extra)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd="/tmp")
    env = dict(_pg_env(), WSOH_BENCH_ADDONS=addons, WSOH_BENCH_INNER="1", WSOH_BENCH_BIN=bin_path)
    python = flectra_python(bin_path)
    os.execve(python, [python, script] + sys.argv[1:], env)

