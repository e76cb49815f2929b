"""Two users refunding the same payment at once, on real PostgreSQL transactions.

Each user runs in a thread of its own with its own cursor and cache, like two
server workers. The payment they refund is committed data, removed afterwards.
"""
import threading
import uuid

import psycopg2

from flectra import SUPERUSER_ID, api
from flectra.exceptions import UserError
from flectra.tests import tagged

from .common import OrderHandlingCase

WAIT = 60  # seconds; only reached if something hangs


@tagged("post_install", "-at_install")
class TestRefundConcurrency(OrderHandlingCase):
    def setUp(self):
        super().setUp()
        self.tx_id = self.acquirer_id = self.partner_id = None
        self.addCleanup(self._run, self._remove_committed_data)
        self._run(self._create_committed_payment)

    def _create_committed_payment(self, env):
        admin = env.ref("base.user_admin")
        self.assertTrue(admin.has_group("website_sale_order_handling.group_order_refund"))
        self.user_id = admin.id
        journal = env["account.journal"].search(
            [("type", "=", "bank"), ("company_id", "=", admin.company_id.id)], limit=1
        )
        acquirer = env["payment.acquirer"].create({
            "name": "Concurrency Transfer", "provider": "transfer", "state": "enabled",
            "journal_id": journal.id, "company_id": admin.company_id.id,
        })
        partner = env["res.partner"].create({"name": "Concurrency Customer"})
        tx = env["payment.transaction"].create({
            "acquirer_id": acquirer.id,
            "amount": 100.0,
            "currency_id": admin.company_id.currency_id.id,
            "reference": "CONC-%s" % uuid.uuid4().hex[:12],
            "partner_id": partner.id,
        })
        tx._set_transaction_done()
        self.tx_id, self.acquirer_id, self.partner_id = tx.id, acquirer.id, partner.id

    def _remove_committed_data(self, env):
        if self.tx_id:
            env.cr.execute(
                "DELETE FROM payment_transaction WHERE source_transaction_id = %s OR id = %s",
                [self.tx_id, self.tx_id],
            )
        env["payment.acquirer"].browse(self.acquirer_id).exists().unlink()
        env["res.partner"].browse(self.partner_id).exists().unlink()

    def _start(self, work, uid=None, commit=True):
        """Run ``work(env)`` in a worker thread; returns (thread, outcome dict)."""
        outcome = {}

        def target():
            with api.Environment.manage():
                cr = self.registry.cursor()
                try:
                    env = api.Environment(cr, uid or SUPERUSER_ID, {})
                    outcome["result"] = work(env)
                    if commit:
                        # A worker ends its request so: others must see it.
                        cr.commit()  # pylint: disable=invalid-commit
                except Exception as error:  # handed to the test thread
                    outcome["error"] = error
                finally:
                    cr.rollback()
                    cr.close()

        thread = threading.Thread(target=target)
        thread.start()
        return thread, outcome

    def _run(self, work, uid=None, commit=True):
        thread, outcome = self._start(work, uid, commit)
        thread.join(WAIT)
        if "error" in outcome:
            raise outcome["error"]
        return outcome.get("result")

    def _refund(self, amount=None):
        return lambda env: env["payment.transaction"].browse(self.tx_id).action_refund(amount).state

    def _committed_refunds(self, env):
        env.cr.execute(
            "SELECT amount, state FROM payment_transaction WHERE source_transaction_id = %s",
            [self.tx_id],
        )
        return env.cr.fetchall()

    def test_two_users_refunding_at_once_make_one_refund(self):
        locked, release = threading.Event(), threading.Event()

        def first_user(env):
            try:
                return self._refund()(env)
            finally:
                locked.set()
                release.wait(WAIT)  # still talking to the acquirer, lock held

        first, first_outcome = self._start(first_user, self.user_id)
        self.assertTrue(locked.wait(WAIT))
        # The second user clicks while the first refund is in progress.
        with self.assertRaisesRegex(UserError, "being processed"):
            self._run(self._refund(), self.user_id)
        release.set()
        first.join(WAIT)
        self.assertEqual(first_outcome.get("result"), "pending", first_outcome.get("error"))

        # Once the first one is through, nothing is left for anybody.
        with self.assertRaisesRegex(UserError, "already fully refunded"):
            self._run(self._refund(), self.user_id)
        self.assertEqual(self._run(self._committed_refunds), [(-100.0, "pending")])

    def test_a_refund_committed_after_another_transaction_started_is_not_missed(self):
        snapshot_taken, go = threading.Event(), threading.Event()

        def late_user(env):
            # This transaction reads the payment first: its snapshot is taken...
            before = env["payment.transaction"].browse(self.tx_id).refundable_amount
            snapshot_taken.set()
            go.wait(WAIT)
            # ...and refunds after another refund was committed.
            return before, self._refund(60.0)(env)

        late, late_outcome = self._start(late_user, self.user_id)
        self.assertTrue(snapshot_taken.wait(WAIT))
        self.assertEqual(self._run(self._refund(60.0), self.user_id), "pending")
        go.set()
        late.join(WAIT)
        self.assertIsInstance(late_outcome.get("error"), psycopg2.errors.SerializationFailure)

        # The server retries such a request: with fresh data it is refused.
        with self.assertRaisesRegex(UserError, "only 40.0 of it is left"):
            self._run(self._refund(60.0), self.user_id)
        self.assertEqual(self._run(self._committed_refunds), [(-60.0, "pending")])
