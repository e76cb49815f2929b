"""The PostgreSQL server the tools use: started if it is down, our role made
if it is missing, and a few statements run as that role."""

import os
import shutil
import socket
import subprocess

from flectra_setup import MODULE, SetupError

NO_POSTGRES = (
    "PostgreSQL was not found: install a PostgreSQL server (psql and pg_ctlcluster) "
    "or point PGHOST/PGPORT at a running one."
)
# The role the tools connect as: Flectra refuses to run as `postgres`.
DB_HOST = os.environ.get("PGHOST", "127.0.0.1")
DB_PORT = os.environ.get("PGPORT", "5432")
DB_USER = os.environ.get("PGUSER", "wsoh")
DB_PASSWORD = os.environ.get("PGPASSWORD", "wsoh")


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


def module_installed(db):
    state = psql(
        "SELECT state FROM ir_module_module WHERE name = '%s'" % MODULE, db=db, check=False
    )
    return state == "installed"
