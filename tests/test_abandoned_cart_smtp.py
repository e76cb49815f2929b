"""Abandoned cart e-mails against a real SMTP server on 127.0.0.1.

The server is started by the test and follows a script: it refuses
connections, answers 421 or 451, does not answer at all, drops the connection
in the middle of DATA, refuses with 550, or accepts. The mail queue runs as
Flectra's cron runs it, in its own thread and committed transactions, and the
messages the server really received are counted.
"""

import email
import email.utils
import socket
import socketserver
import threading
from datetime import timedelta
from unittest.mock import patch

from flectra import fields
from flectra.tests import tagged
from flectra.tools import mute_logger

from .committed_common import CommittedCase

CARTS = 3


class ScriptedSMTPHandler(socketserver.StreamRequestHandler):
    def reply(self, text):
        self.wfile.write(text.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self):
        server = self.server
        mode = server.mode
        server.connections[mode] = server.connections.get(mode, 0) + 1
        if mode == "stall":
            server.release.wait(30)
            return
        if mode == "greet421":
            self.reply("421 4.3.2 Service not available, closing channel")
            return
        self.reply("220 localhost ESMTP scripted test server")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            verb = line.split(b":", 1)[0].split(b" ", 1)[0].strip().upper()
            if verb == b"EHLO":
                self.reply("250-localhost\r\n250-8BITMIME\r\n250 SMTPUTF8")
            elif verb in (b"HELO", b"MAIL", b"RSET", b"NOOP"):
                self.reply("250 2.0.0 Ok")
            elif verb == b"RCPT":
                if mode == "rcpt451":
                    self.reply("451 4.7.1 Greylisted, please try again later")
                elif mode == "rcpt550":
                    self.reply("550 5.1.1 No such user here")
                else:
                    self.reply("250 2.1.5 Ok")
            elif verb == b"DATA":
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                if mode == "drop_data":
                    self.rfile.readline()  # the first line of the message, then hang up
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                data = []
                while True:
                    line = self.rfile.readline()
                    if line in (b".\r\n", b".\n", b""):
                        break
                    data.append(line[1:] if line.startswith(b"..") else line)
                server.received.append(email.message_from_bytes(b"".join(data)))
                self.reply("250 2.0.0 Ok: queued")
            elif verb == b"QUIT":
                self.reply("221 2.0.0 Bye")
                return
            else:
                self.reply("502 5.5.2 Command not recognized")


class ScriptedSMTPServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, port):
        super().__init__(("127.0.0.1", port), ScriptedSMTPHandler)
        self.mode = "accept"
        self.received = []
        self.connections = {}
        self.release = threading.Event()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@tagged("post_install", "-at_install")
class TestAbandonedCartSMTP(CommittedCase):
    def setUp(self):
        super().setUp()
        self.port = free_port()
        self.server = None
        self.addCleanup(self._stop_server)
        # A server that never answers times out in 1 second, not Flectra's 60.
        timeout = patch("flectra.addons.base.models.ir_mail_server.SMTP_TIMEOUT", 1)
        timeout.start()
        self.addCleanup(timeout.stop)
        self.ids = self.commit(self._create_data, context={"tracking_disable": True})
        self.assertEqual(len(self.ids["mails"]), CARTS)

    def _create_data(self, env):
        now = fields.Datetime.now()
        self.track(
            env["ir.mail_server"].create(
                {
                    "name": "Scripted test SMTP",
                    "smtp_host": "127.0.0.1",
                    "smtp_port": self.port,
                    "smtp_encryption": "none",
                    "sequence": 0,
                }
            )
        )
        website = self.track(
            env["website"].create(
                {
                    "name": "SMTP Shop",
                    "send_abandoned_cart_email": True,
                    "cart_abandoned_delay": 1.0,
                }
            )
        )
        website.abandoned_cart_email_start = now - timedelta(days=1)
        product = self.track(
            env["product.product"].create(
                {"name": "SMTP Mug", "list_price": 9.0, "is_published": True, "type": "consu"}
            )
        )
        partners = self.track(
            env["res.partner"].create(
                [
                    {"name": "SMTP Buyer %s" % n, "email": "smtp.buyer%s@example.com" % n}
                    for n in range(CARTS)
                ]
            )
        )
        orders = self.track(
            env["sale.order"].create(
                [
                    {
                        "partner_id": partner.id,
                        "website_id": website.id,
                        "order_line": [(0, 0, {"product_id": product.id, "product_uom_qty": 1})],
                    }
                    for partner in partners
                ]
            )
        )
        orders.write({"cart_last_activity": now - timedelta(hours=3)})
        env["website.abandoned.cart.mailer"]._send_abandoned_cart_emails(website)
        mails = env["mail.mail"].search(
            [("model", "=", "sale.order"), ("res_id", "in", orders.ids)]
        )
        return {
            "website": website.id,
            "product": product.id,
            "partners": partners.ids,
            "orders": orders.ids,
            "mails": mails.ids,
        }

    def _stop_server(self):
        if self.server:
            self.server.release.set()
            self.server.shutdown()
            self.server.server_close()

    def _remove_committed(self, env):
        # The reminders the mailer made, and the setting a test changed.
        order_ids = self.tracked(env, "sale.order").ids
        env["mail.mail"].search(
            [("model", "=", "sale.order"), ("res_id", "in", order_ids)]
        ).unlink()
        env["mail.message"].search(
            [("model", "=", "sale.order"), ("res_id", "in", order_ids)]
        ).unlink()
        env["ir.config_parameter"].set_param(
            "website_sale_order_handling.cart_reminder_max_attempts", False
        )
        return super()._remove_committed(env)

    # -- helpers ----------------------------------------------------------
    def _start_server(self):
        self.server = ScriptedSMTPServer(self.port)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _run_queue(self, mode=None):
        """One run of the mail queue cron, in its own thread and transaction."""
        if mode:
            self.server.mode = mode

        # Flectra logs each failed mail as an error: expected here.
        with mute_logger("flectra.addons.mail.models.mail_mail"):
            thread, outcome = self.start_worker(
                lambda env: env["mail.mail"].process_email_queue(ids=self.ids["mails"])
            )
            thread.join(timeout=120)
        self.assertFalse(thread.is_alive())
        self.assertNotIn("error", outcome, outcome.get("error"))

    def _query(self, columns):
        def read(env):
            env.cr.execute(
                "SELECT id, %s FROM mail_mail WHERE id IN %%s ORDER BY id" % columns,
                (tuple(self.ids["mails"]),),
            )
            return env.cr.fetchall()

        return self.snapshot(read)

    def _states(self):
        return [row[1] for row in self._query("state")]

    def _attempts(self):
        return [row[1] for row in self._query("cart_reminder_attempts")]

    def _retry_delays(self, since):
        return [
            fields.Datetime.from_string(row[1]) - since for row in self._query("scheduled_date")
        ]

    def _make_due(self):
        """Time passes: the retries are due."""
        self.commit(
            lambda env: env.cr.execute(
                "UPDATE mail_mail SET scheduled_date = '2000-01-01 00:00:00' WHERE id IN %s",
                (tuple(self.ids["mails"]),),
            )
        )

    def _set_max_attempts(self, value):
        self.commit(
            lambda env: env["ir.config_parameter"].set_param(
                "website_sale_order_handling.cart_reminder_max_attempts", value
            )
        )

    # -- tests ------------------------------------------------------------
    def test_transient_failures_are_retried_later_and_each_reminder_arrives_once(self):
        delays = []
        # 1. Nothing listens on the port: connection refused.
        started = fields.Datetime.now()
        self._run_queue()
        self.assertEqual(self._states(), ["outgoing"] * CARTS)
        self.assertEqual(self._attempts(), [1] * CARTS)
        delays.append(min(self._retry_delays(started)))
        self._start_server()
        # 2. "421 Service not available" as greeting; 3. no answer (timeout);
        # 4. "451 Greylisted" to each recipient.
        for attempt, mode in enumerate(("greet421", "stall", "rcpt451"), 2):
            self._make_due()
            started = fields.Datetime.now()
            self._run_queue(mode)
            self.assertEqual(self._states(), ["outgoing"] * CARTS, mode)
            self.assertEqual(self._attempts(), [attempt] * CARTS, mode)
            self.assertEqual(self.server.connections.get(mode), 1, mode)
            delays.append(min(self._retry_delays(started)))
        self.assertEqual(delays, sorted(delays), "each retry waits longer")
        self.assertGreater(delays[-1], delays[0] * 4)
        # 5. The connection drops in the middle of the first message's DATA.
        self._make_due()
        self._run_queue("drop_data")
        self.assertEqual(self._states(), ["outgoing"] * CARTS)
        self.assertEqual(self._attempts()[0], 5, "the message in flight is retried later")
        self.assertEqual(self.server.received, [])
        # 6. The server accepts: every reminder arrives, once.
        self._make_due()
        self._run_queue("accept")
        self.assertEqual(self._states(), ["sent"] * CARTS)
        recipients = sorted(
            email.utils.parseaddr(message["To"])[1] for message in self.server.received
        )
        self.assertEqual(recipients, ["smtp.buyer%s@example.com" % n for n in range(CARTS)])
        self._make_due()
        self._run_queue("accept")
        self.assertEqual(len(self.server.received), CARTS, "nothing is sent twice")

    def test_permanent_failure_fails_at_once_and_retries_are_bounded(self):
        self._start_server()
        self._run_queue("rcpt550")
        self.assertEqual(self._states(), ["exception"] * CARTS)
        self.assertEqual(self._attempts(), [1] * CARTS)
        self.assertTrue(all("550" in row[1] for row in self._query("failure_reason")))
        self._make_due()
        self._run_queue("accept")
        self.assertEqual(self.server.received, [], "a permanent failure is not retried")
        # With at most 2 attempts, a second transient failure is the last one.
        self._set_max_attempts(2)
        with self.registry.cursor() as cr:
            cr.execute(
                "UPDATE mail_mail SET state = 'outgoing', cart_reminder_attempts = 0"
                " WHERE id IN %s",
                (tuple(self.ids["mails"]),),
            )
        self._run_queue("greet421")
        self.assertEqual(self._states(), ["outgoing"] * CARTS)
        self._make_due()
        self._run_queue("greet421")
        self.assertEqual(self._states(), ["exception"] * CARTS)
        self.assertTrue(all("2 attempts" in row[1] for row in self._query("failure_reason")))
        self._make_due()
        self._run_queue("accept")
        self.assertEqual(self.server.received, [])
