"""A refund outlives the request that made it, on real PostgreSQL transactions:
the attempt and Stripe's answer are committed on their own, so a request that
fails after Stripe accepted loses no record and never refunds twice."""

import unittest

from flectra.exceptions import UserError
from flectra.tests import tagged

from .refund_common import CommittedRefundCase
from .stripe_stub import StripeStub


class RequestCrashed(Exception):
    """What a request dying after Stripe accepted looks like to the test."""


@tagged("post_install", "-at_install")
class TestRefundDurability(CommittedRefundCase):
    def setUp(self):
        super().setUp()
        self.stub = StripeStub().start()
        self.addCleanup(self.stub.stop)
        self.tx_id = self.run_worker(self._create_committed_payment)

    def _create_committed_payment(self, env):
        if "stripe" not in dict(env["payment.acquirer"]._fields["provider"].selection):
            raise unittest.SkipTest("payment_stripe is not installed")
        admin = self._admin(env)
        self.user_id = admin.id
        journal = env["account.journal"].search(
            [("type", "=", "bank"), ("company_id", "=", admin.company_id.id)], limit=1
        )
        acquirer = self._commit_record(
            env,
            "payment.acquirer",
            {
                "name": "Stripe (stub, committed)",
                "provider": "stripe",
                "state": "test",
                "stripe_secret_key": "sk_test_stub",
                "stripe_publishable_key": "pk_test_stub",
                "journal_id": journal.id,
                "company_id": admin.company_id.id,
            },
        )
        params = env["ir.config_parameter"]
        params.set_param("website_sale_order_handling.stripe_api_url", self.stub.url)
        self.track(params.search([("key", "=", "website_sale_order_handling.stripe_api_url")]))
        return self._commit_payment(env, acquirer, 100.0, stripe_payment_intent="pi_durable_1").id

    def _refunds(self, env):
        env.cr.execute(
            "SELECT amount, state, refund_idempotency_key, acquirer_reference "
            "FROM payment_transaction WHERE source_transaction_id = %s ORDER BY id",
            [self.tx_id],
        )
        return env.cr.fetchall()

    def test_a_request_failing_after_stripe_accepted_loses_no_record_and_refunds_once(self):
        def request_that_dies(env):
            env["payment.transaction"].browse(self.tx_id).action_refund()
            # Anything after Stripe's answer: a serialization failure, a crash...
            raise RequestCrashed()

        with self.assertRaises(RequestCrashed):
            self.run_worker(request_that_dies, self.user_id)
        [(amount, state, key, stripe_id)] = self.run_worker(self._refunds)
        self.assertEqual((amount, state, stripe_id), (-100.0, "done", "re_stub_1"))
        self.assertEqual(len(self.stub.refunds), 1)
        self.assertEqual(self.stub.requests[0]["idempotency_key"], key)

        # The next click sees the refund: nothing is left, nothing is sent.
        with self.assertRaisesRegex(UserError, "already fully refunded"):
            self.run_worker(
                lambda env: env["payment.transaction"].browse(self.tx_id).action_refund(),
                self.user_id,
            )
        self.assertEqual(len(self.stub.requests), 1)
        self.assertEqual(len(self.stub.refunds), 1, "refunded once")

    def test_a_connection_lost_after_stripe_accepted_is_kept_and_retried_once(self):
        self.stub.mode = "drop"

        def refund(env):
            return self._committed_state(
                env["payment.transaction"].browse(self.tx_id).action_refund()
            )

        self.assertEqual(self.run_worker(refund, self.user_id), "error")
        [(amount, state, key, _stripe_id)] = self.run_worker(self._refunds)
        self.assertEqual((amount, state), (-100.0, "error"), "the attempt is on record")
        self.assertEqual(len(self.stub.refunds), 1, "Stripe made it")

        self.stub.mode = "succeeded"

        def retry(env):
            env["payment.transaction"].browse(
                self.tx_id
            ).refund_transaction_ids.action_retry_refund()

        self.run_worker(retry, self.user_id)
        [(amount, state, key2, stripe_id)] = self.run_worker(self._refunds)
        self.assertEqual((state, key2, stripe_id), ("done", key, "re_stub_1"))
        self.assertEqual(len(self.stub.refunds), 1, "refunded once")
