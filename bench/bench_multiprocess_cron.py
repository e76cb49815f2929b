#!/usr/bin/env python3
"""The abandoned-cart cron under Flectra's multi-process server, on two servers.

    python3 bench/bench_multiprocess_cron.py [--carts 20000]

It builds the database ``wsoh_bench_mp`` once (add-on, no demo), then for each
scenario seeds ``--carts`` draft carts with SQL (a quarter eligible: those
whose customer has an e-mail), makes the add-on's cron record
``website_sale_order_handling.ir_cron_send_abandoned_cart_email`` due now and
lets Flectra's cron workers run it on their own schedule (the script never
calls the engine: it only moves the record's ``nextcall``, so it does not
depend on where the engine lives). Scenarios:

  1. one server, --workers=2 --max-cron-threads=1 (a single cron worker);
  2. two servers on the same database at the same time, each with
     --workers=2 --max-cron-threads=2 (two machines behind a load balancer);
  3. as 2, and the server whose cron worker runs the job is killed with
     SIGKILL (its whole process group: master, HTTP and cron workers) once
     a third of the e-mails are queued.

Mails never leave: every other cron is switched off in the bench database
(the mail queue included) and the servers' SMTP is a sink on 127.0.0.1
started by this script, which counts what reaches it. The mails are counted
from the database, per cart: every eligible cart must have exactly one.
"""

import argparse
import os
import signal
import socketserver
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tools"))
sys.path.insert(0, HERE)
import flectra_env as fe  # noqa: E402

DB = os.environ.get("WSOH_BENCH_MP_DB", "wsoh_bench_mp")
CRON_XMLID = ("website_sale_order_handling", "ir_cron_send_abandoned_cart_email")
TIMEOUT = 900  # seconds per scenario, at most
JOB = "Starting job `eCommerce: Send Abandoned Cart E-mails`"


class SmtpSink(socketserver.ThreadingTCPServer):
    """Just enough SMTP for Flectra to hand over a mail, which goes nowhere."""

    allow_reuse_address = True
    daemon_threads = True
    received = 0

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            self.wfile.write(b"220 sink ESMTP\r\n")
            while True:
                line = self.rfile.readline()
                if not line:
                    return
                verb = line[:4].upper()
                if verb == b"DATA":
                    self.wfile.write(b"354 go on\r\n")
                    while self.rfile.readline() not in (b".\r\n", b".\n", b""):
                        pass
                    self.server.received += 1
                    self.wfile.write(b"250 swallowed\r\n")
                elif verb == b"QUIT":
                    self.wfile.write(b"221 bye\r\n")
                    return
                else:
                    self.wfile.write(b"250 ok\r\n")

    def __init__(self):
        super().__init__(("127.0.0.1", 0), self.Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


def bootstrap():
    """Re-run this file under Flectra's Python with the database ready."""
    fe.reexec_bench_under_flectra(DB, __file__, max_cron_threads=0)


def sql(query):
    return fe.psql(query, db=DB)


def seed(registry, count):
    """Fresh carts (the previous scenario's are deleted) and the cron due now."""
    from bench_abandoned_cart import build_carts

    import flectra

    with flectra.api.Environment.manage(), registry.cursor() as cr:
        cr.execute("SELECT id FROM sale_order WHERE name LIKE 'BENCH%%'")
        old = tuple(row[0] for row in cr.fetchall())
        if old:
            cr.execute(
                "DELETE FROM mail_message WHERE model = 'sale.order' AND res_id IN %s", (old,)
            )
            cr.execute("SELECT partner_id FROM sale_order WHERE id IN %s", (old,))
            partners = tuple(row[0] for row in cr.fetchall())
            cr.execute("DELETE FROM sale_order WHERE id IN %s", (old,))
            cr.execute("DELETE FROM res_partner WHERE id IN %s", (partners,))
        cr.execute("DELETE FROM mail_mail")
        env = flectra.api.Environment(cr, flectra.SUPERUSER_ID, {})
        _websites, order_ids = build_carts(env, count)
        cron = env.ref("%s.%s" % CRON_XMLID)
        # Only this cron runs: the mail queue stays put, nothing else competes.
        cr.execute("UPDATE ir_cron SET active = (id = %s)", (cron.id,))
        cr.execute(
            "UPDATE ir_cron SET nextcall = now() at time zone 'utc' - interval '1 second'"
            " WHERE id = %s",
            (cron.id,),
        )
        cr.execute(
            """SELECT count(*) FROM sale_order so JOIN res_partner p ON p.id = so.partner_id
                       WHERE so.id IN %s AND p.email IS NOT NULL""",
            (tuple(order_ids),),
        )
        eligible = cr.fetchone()[0]
        cr.commit()
    return eligible


def mails_queued():
    return int(
        sql("""SELECT count(*) FROM mail_mail mm JOIN mail_message m
                        ON m.id = mm.mail_message_id
                       WHERE m.model = 'sale.order' AND mm.is_cart_reminder""")
    )


def per_cart():
    """(eligible carts with no mail, with exactly one, with more than one, mails to others)."""
    row = sql(
        """
        WITH carts AS (
            SELECT so.id, p.email IS NOT NULL AS eligible, so.cart_reminder_count,
                   (SELECT count(*) FROM mail_mail mm JOIN mail_message m
                        ON m.id = mm.mail_message_id
                     WHERE m.model = 'sale.order' AND m.res_id = so.id
                       AND mm.is_cart_reminder) AS mails
              FROM sale_order so JOIN res_partner p ON p.id = so.partner_id
             WHERE so.name LIKE 'BENCH%%')
        SELECT count(*) FILTER (WHERE eligible AND mails = 0),
               count(*) FILTER (WHERE eligible AND mails = 1 AND cart_reminder_count = 1),
               count(*) FILTER (WHERE mails > 1),
               count(*) FILTER (WHERE NOT eligible AND mails > 0)
          FROM carts""".replace("%%", "%")
    )
    return tuple(int(v) for v in row.split("|"))


class Server:
    def __init__(self, name, cron_threads, smtp_port):
        self.name = name
        self.log = "/tmp/%s-%s.log" % (DB, name)
        open(self.log, "w").close()
        cmd = fe.flectra_command(
            os.environ["WSOH_BENCH_BIN"],
            os.environ["WSOH_BENCH_ADDONS"],
            DB,
            "--workers=2",
            "--max-cron-threads=%d" % cron_threads,
            "--http-port=%d" % fe.free_port(),
            "--longpolling-port=%d" % fe.free_port(),
            "--limit-time-real-cron=900",
            "--limit-time-cpu=900",
            "--limit-time-real=900",
            "--smtp=127.0.0.1",
            "--smtp-port=%d" % smtp_port,
            "--log-level=info",
            "--logfile=%s" % self.log,
        )
        # Its own process group: SIGKILL to the group is a machine going down.
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/tmp",
            start_new_session=True,
        )

    def job_starts(self):
        with open(self.log, errors="replace") as log:
            return sum(JOB in line for line in log)

    def kill(self):
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self):
        if self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)


def scenario(registry, sink, title, servers_spec, count, kill_at=None):
    eligible = seed(registry, count)
    sunk = sink.received
    started = time.time()
    servers = [Server(name, threads, sink.server_address[1]) for name, threads in servers_spec]
    first_job = done_at = killed = None
    try:
        while time.time() - started < TIMEOUT:
            time.sleep(1)
            queued = mails_queued()
            if first_job is None and any(s.job_starts() for s in servers):
                first_job = time.time() - started
            if kill_at and killed is None and queued >= eligible * kill_at:
                owners = [s for s in servers if s.job_starts()]
                victim = owners[0] if len(owners) == 1 else servers[0]
                victim.kill()
                killed = (victim.name, queued, time.time() - started)
            if queued >= eligible:
                done_at = time.time() - started
                break
        # Any late duplicate would come from a worker still busy: give them time.
        time.sleep(5)
        starts = {s.name: s.job_starts() for s in servers}
    finally:
        for server in servers:
            server.stop()
    missing, once, duplicated, wrong = per_cart()
    print("\n%s" % title, flush=True)
    print(
        "  %d carts, %d eligible; cron job started by: %s"
        % (count, eligible, ", ".join("%s %dx" % kv for kv in starts.items()))
    )
    if killed:
        print(
            "  SIGKILL to server %s (process group) at %.0f s, %d mails queued"
            % (killed[0], killed[2], killed[1])
        )
    if done_at is None:
        print("  NOT FINISHED within %d s: %d of %d queued" % (TIMEOUT, mails_queued(), eligible))
    else:
        print(
            "  all queued %.0f s after the cron was due; first job start at %.0f s, "
            "so %.0f s of work" % (done_at, first_job or 0, done_at - (first_job or 0))
        )
    print(
        "  per cart: %d eligible with exactly one mail, %d eligible with none, "
        "%d with more than one, %d ineligible with a mail; %d reached the SMTP sink"
        % (once, missing, duplicated, wrong, sink.received - sunk),
        flush=True,
    )
    return done_at, first_job


def main():
    import flectra
    from flectra.tools import config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--carts", type=int, default=20000)
    args = parser.parse_args()
    config.parse_config(
        [
            "--addons-path",
            os.environ["WSOH_BENCH_ADDONS"],
            "-d",
            DB,
            "--log-level=warn",
            "--db_host",
            os.environ["PGHOST"],
            "--db_port",
            os.environ["PGPORT"],
            "--db_user",
            os.environ["PGUSER"],
            "--db_password",
            os.environ["PGPASSWORD"],
        ]
    )
    registry = flectra.registry(DB)
    sink = SmtpSink()
    print(
        "Flectra --workers=2 on %s; cron workers poll every 60-70 s (Flectra's "
        "SLEEP_INTERVAL), so the first start waits for a poll" % DB,
        flush=True,
    )
    single = scenario(registry, sink, "1. one server, one cron worker", [("A", 1)], args.carts)
    double = scenario(
        registry,
        sink,
        "2. two servers, 2 cron workers each, same database",
        [("A", 2), ("B", 2)],
        args.carts,
    )
    scenario(
        registry,
        sink,
        "3. as 2, SIGKILL the server running the job at 1/3",
        [("A", 2), ("B", 2)],
        args.carts,
        kill_at=1 / 3,
    )
    if single[0] and double[0]:
        print(
            "\nwall time until all sent, two servers / one cron worker: %.2fx "
            "(work only: %.2fx)"
            % (double[0] / single[0], (double[0] - double[1]) / (single[0] - single[1]))
        )


if __name__ == "__main__":
    if os.environ.get("WSOH_BENCH_INNER"):
        main()
    else:
        bootstrap()
