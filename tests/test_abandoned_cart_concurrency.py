"""Exactly once, proven with real transactions: data is committed by separate
cursors, workers run in their own cursors and threads, and everything is
deleted afterwards."""

import threading
from datetime import timedelta
from unittest.mock import patch

from flectra import SUPERUSER_ID, api, fields
from flectra.addons.website_sale_order_handling.models.abandoned_cart_mailer import (
    AbandonedCartMailer,
)
from flectra.tests import tagged

from .committed_common import CommittedCase

CARTS = 12


@tagged("post_install", "-at_install")
class TestAbandonedCartExactlyOnce(CommittedCase):
    def setUp(self):
        super().setUp()
        self.website_id, self.product_id, self.partner_ids, self.order_ids = self.commit(
            self._create_data, context={"tracking_disable": True}
        )

    def _create_data(self, env):
        now = fields.Datetime.now()
        website = self.track(
            env["website"].create(
                {
                    "name": "Concurrency Shop",
                    "send_abandoned_cart_email": True,
                    "cart_abandoned_delay": 1.0,
                }
            )
        )
        website.abandoned_cart_email_start = now - timedelta(days=1)
        product = self.track(
            env["product.product"].create(
                {"name": "Concurrent Mug", "list_price": 9.0, "is_published": True, "type": "consu"}
            )
        )
        partners = self.track(
            env["res.partner"].create(
                [{"name": "Buyer %s" % n, "email": "buyer%s@example.com" % n} for n in range(CARTS)]
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
        return website.id, product.id, partners.ids, orders.ids

    def _remove_committed(self, env):
        # The carts' e-mails and messages, which the mailer made.
        order_ids = self.tracked(env, "sale.order").ids
        env["mail.mail"].search(
            [("model", "=", "sale.order"), ("res_id", "in", order_ids)]
        ).unlink()
        env["mail.message"].search(
            [("model", "=", "sale.order"), ("res_id", "in", order_ids)]
        ).unlink()
        return super()._remove_committed(env)

    def _run_worker(self, batch_size, results=None):
        with api.Environment.manage(), self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            sent = env["website.abandoned.cart.mailer"]._send_abandoned_cart_emails(
                env["website"].browse(self.website_id), batch_size=batch_size, auto_commit=True
            )
        if results is not None:
            results.append(sent)
        return sent

    def _mails_per_cart(self):
        def read(env):
            env.cr.execute(
                """SELECT so.id, so.cart_reminder_count, COUNT(mm.id)
                     FROM sale_order so
                LEFT JOIN mail_message msg ON msg.model = 'sale.order' AND msg.res_id = so.id
                LEFT JOIN mail_mail mm ON mm.mail_message_id = msg.id AND mm.is_cart_reminder
                    WHERE so.id IN %s GROUP BY so.id, so.cart_reminder_count""",
                (tuple(self.order_ids),),
            )
            return {order_id: (count, mails) for order_id, count, mails in env.cr.fetchall()}

        return self.snapshot(read)

    def assertEachCartEmailedOnce(self):
        per_cart = self._mails_per_cart()
        self.assertEqual(len(per_cart), CARTS)
        self.assertEqual(set(per_cart.values()), {(1, 1)}, per_cart)

    def test_a_worker_skips_the_carts_another_worker_holds(self):
        # Worker A locks and claims a first batch, and has not committed yet.
        cr_a = self.registry.cursor()
        try:
            env_a = api.Environment(cr_a, SUPERUSER_ID, {})
            website_a = env_a["website"].browse(self.website_id)
            mailer_a = env_a["website.abandoned.cart.mailer"]
            step = mailer_a._get_steps(website_a)[0]
            now = fields.Datetime.now()
            window = mailer_a._select_cart_window(
                website_a,
                step,
                "cart_last_activity",
                now,
                (website_a.abandoned_cart_email_start, 0),
                5,
            )
            rows = mailer_a._select_abandoned_carts(website_a, step, [row[0] for row in window])
            held = env_a["sale.order"].browse([row[0] for row in rows])
            self.assertEqual(len(held), 5)
            # Worker B runs the whole cron meanwhile: it takes only the other carts.
            self.assertEqual(self._run_worker(batch_size=4), CARTS - 5)
            claimed_a, failures = mailer_a._email_batch(held, step, now)
            self.assertEqual((len(claimed_a), failures), (5, {}))
            cr_a.commit()
        finally:
            cr_a.close()
        self.assertEachCartEmailedOnce()
        self.assertEqual(self._run_worker(batch_size=4), 0)

    def test_two_cron_workers_at_the_same_moment_email_each_cart_once(self):
        results, barrier = [], threading.Barrier(2)

        def worker():
            barrier.wait()
            self._run_worker(batch_size=3, results=results)

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        self.assertEqual(sum(results), CARTS)
        self.assertEachCartEmailedOnce()

    def test_a_run_killed_mid_way_loses_nothing_and_repeats_nothing(self):
        original = AbandonedCartMailer._email_batch
        calls = []

        def crash_on_second_batch(mailer, orders, step, now):
            calls.append(len(orders))
            if len(calls) == 2:
                raise KeyboardInterrupt("worker killed")
            return original(mailer, orders, step, now)

        with patch.object(AbandonedCartMailer, "_email_batch", crash_on_second_batch):
            with self.assertRaises(KeyboardInterrupt):
                self._run_worker(batch_size=5)
        per_cart = self._mails_per_cart()
        self.assertEqual(sorted(per_cart.values()).count((1, 1)), 5, "the committed batch is kept")
        self.assertEqual(
            sorted(per_cart.values()).count((0, 0)), CARTS - 5, "the killed batch left no trace"
        )
        self.assertEqual(self._run_worker(batch_size=5), CARTS - 5)
        self.assertEachCartEmailedOnce()
