"""Users refunding the same payment at once, on real PostgreSQL transactions.

Each user runs in a thread of its own with its own cursor and cache, like two
server workers. The payments they refund are committed data, removed afterwards.
"""

import threading

from flectra.exceptions import UserError
from flectra.tests import tagged

from .committed_common import WAIT
from .refund_common import CommittedRefundCase


@tagged("post_install", "-at_install")
class TestRefundConcurrency(CommittedRefundCase):
    def setUp(self):
        super().setUp()
        self.tx_id = self.run_worker(self._create_committed_payment)

    def _create_committed_payment(self, env):
        admin = self._admin(env)
        self.user_id = admin.id
        journal = env["account.journal"].search(
            [("type", "=", "bank"), ("company_id", "=", admin.company_id.id)], limit=1
        )
        self.acquirer = self._commit_record(
            env,
            "payment.acquirer",
            {
                "name": "Concurrency Transfer",
                "provider": "transfer",
                "state": "enabled",
                "journal_id": journal.id,
                "company_id": admin.company_id.id,
            },
        )
        return self._commit_payment(env, self.acquirer, 100.0).id

    def _refund(self, amount=None):
        def work(env):
            refund = env["payment.transaction"].browse(self.tx_id).action_refund(amount)
            return self._committed_state(refund)

        return work

    def _committed_refunds(self, env, tx_id=None):
        env.cr.execute(
            "SELECT amount, state FROM payment_transaction WHERE source_transaction_id = %s "
            "ORDER BY id",
            [tx_id or self.tx_id],
        )
        return env.cr.fetchall()

    def test_two_users_refunding_at_once_make_one_refund(self):
        # The first user holds the payment's lock while checking and reserving.
        reached, release = self._hold_in("_check_refundable", "sale.order.refund.engine")
        first, first_outcome = self.start_worker(self._refund(), self.user_id)
        self.assertTrue(reached.wait(WAIT))
        # The second user clicks while the first refund is in progress.
        with self.assertRaisesRegex(UserError, "being processed"):
            self.run_worker(self._refund(), self.user_id)
        release.set()
        first.join(WAIT)
        self.assertEqual(first_outcome.get("result"), "pending", first_outcome.get("error"))

        # Once the first one is through, nothing is left for anybody.
        with self.assertRaisesRegex(UserError, "already fully refunded"):
            self.run_worker(self._refund(), self.user_id)
        self.assertEqual(self.run_worker(self._committed_refunds), [(-100.0, "pending")])

    def test_a_refund_committed_after_another_transaction_started_is_not_missed(self):
        snapshot_taken, go = threading.Event(), threading.Event()

        def late_user(env):
            # This request reads the payment first: its snapshot is taken...
            before = env["payment.transaction"].browse(self.tx_id).refundable_amount
            snapshot_taken.set()
            go.wait(WAIT)
            # ...and refunds after another refund was committed.
            return before, self._refund(60.0)(env)

        late, late_outcome = self.start_worker(late_user, self.user_id)
        self.assertTrue(snapshot_taken.wait(WAIT))
        self.assertEqual(self.run_worker(self._refund(60.0), self.user_id), "pending")
        go.set()
        late.join(WAIT)
        # The refund is checked in a transaction of its own, on fresh data.
        self.assertIsInstance(late_outcome.get("error"), UserError)
        self.assertIn("only 40.0 of it is left", str(late_outcome["error"]))
        self.assertEqual(self.run_worker(self._committed_refunds), [(-60.0, "pending")])

    def test_two_users_refunding_two_orders_of_one_payment_at_once(self):
        def create_orders(env):
            product = self._commit_record(
                env,
                "product.product",
                {
                    "name": "Concurrency Service",
                    "type": "service",
                    "list_price": 10.0,
                    "taxes_id": [(6, 0, [])],
                },
            )
            partner = self._commit_record(env, "res.partner", {"name": "Shared Customer"})
            orders = env["sale.order"]
            for qty in (11.5, 3.45):  # 115.00 and 34.50
                orders |= self._commit_record(
                    env,
                    "sale.order",
                    {
                        "partner_id": partner.id,
                        "order_line": [(0, 0, {"product_id": product.id, "product_uom_qty": qty})],
                    },
                )
            tx = self._commit_payment(env, self.acquirer, 149.5, orders)
            return tx.id, orders.ids

        tx_id, (first_id, second_id) = self.run_worker(create_orders)

        def refund_order(order_id):
            def work(env):
                order = env["sale.order"].browse(order_id)
                order.action_refund()
                return order.online_refundable_amount

            return work

        # Both click Refund in the same instant: the first one is still being
        # sent to the acquirer when the second one starts.
        reached, release = self._hold_in("_send_refund")
        first, first_outcome = self.start_worker(refund_order(first_id), self.user_id)
        self.assertTrue(reached.wait(WAIT))
        second, second_outcome = self.start_worker(refund_order(second_id), self.user_id)
        second.join(WAIT)
        release.set()
        first.join(WAIT)
        self.assertNotIn("error", first_outcome, first_outcome.get("error"))
        self.assertNotIn("error", second_outcome, second_outcome.get("error"))
        self.assertEqual(
            sorted(self.run_worker(lambda env: self._committed_refunds(env, tx_id))),
            [(-115.0, "pending"), (-34.5, "pending")],
            "each order got exactly its own share, and together the whole payment",
        )
        for order_id in (first_id, second_id):
            with self.assertRaisesRegex(UserError, "already fully refunded"):
                self.run_worker(refund_order(order_id), self.user_id)
