"""Stripe refunds against a local stub of its API: what is sent, and every answer."""

import socket
from datetime import timedelta
from unittest.mock import patch

from flectra import fields
from flectra.exceptions import UserError
from flectra.tests import tagged
from flectra.tools import mute_logger

from .refund_common import RefundCase
from .stripe_stub import StripeStub


class ServerDied(Exception):
    """A server killed right after Stripe answered, before the answer was recorded."""


@tagged("post_install", "-at_install")
class TestRefundStripe(RefundCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._require_stripe()
        cls.acquirer_stripe = cls.env["payment.acquirer"].create(
            {
                "name": "Stripe (stub)",
                "provider": "stripe",
                "state": "test",
                "stripe_secret_key": "sk_test_stub",
                "stripe_publishable_key": "pk_test_stub",
                "journal_id": cls.bank_journal.id,
            }
        )

    def setUp(self):
        super().setUp()
        self.stub = StripeStub(timeout_delay=1.5).start()
        self.addCleanup(self.stub.stop)
        params = self.env["ir.config_parameter"].sudo()
        params.set_param("website_sale_order_handling.stripe_api_url", self.stub.url)
        params.set_param("website_sale_order_handling.stripe_refund_timeout", "0.5")

    def _stripe_order(self, invoiced=False, **tx_values):
        tx_values.setdefault("acquirer_reference", "ch_stub_42")
        return self._paid_order(
            lines=[(self.product, 1)], invoiced=invoiced, acquirer=self.acquirer_stripe, **tx_values
        )

    def test_succeeded_refund_sends_amount_charge_and_idempotency_key(self):
        self.assertEqual(self.acquirer_stripe.support_refund, "partial")
        order, tx = self._stripe_order(invoiced=True)
        order.with_user(self.refunder).action_refund()
        refund = tx.refund_transaction_ids
        self.assertEqual(refund.state, "done")
        self.assertEqual(refund.acquirer_reference, "re_stub_1")
        [request] = self.stub.requests
        self.assertEqual(request["path"], "/v1/refunds")
        self.assertEqual(request["form"]["amount"], "5000")
        self.assertEqual(request["form"]["charge"], "ch_stub_42")
        self.assertEqual(request["form"]["metadata[reference]"], refund.reference)
        self.assertEqual(request["authorization"], "Bearer sk_test_stub")
        self.assertTrue(refund.refund_idempotency_key)
        self.assertEqual(request["idempotency_key"], refund.refund_idempotency_key)
        self.assertEqual(refund.payment_id.state, "posted")
        self.assertEqual(refund.refund_move_ids.payment_state, "paid")

    def test_partial_refund_of_a_payment_intent_sends_it_in_cents(self):
        _order, tx = self._stripe_order(stripe_payment_intent="pi_stub_7")
        refund = tx.with_user(self.refunder).action_refund(12.34)
        self.assertEqual(refund.state, "done")
        [request] = self.stub.requests
        self.assertEqual(request["form"]["payment_intent"], "pi_stub_7")
        self.assertNotIn("charge", request["form"])
        self.assertEqual(request["form"]["amount"], "1234")
        self.assertAlmostEqual(tx.refundable_amount, 37.66)

    def test_pending_refund_stays_pending_without_payment(self):
        self.stub.mode = "pending"
        order, tx = self._stripe_order(invoiced=True)
        order.with_user(self.refunder).action_refund()
        refund = tx.refund_transaction_ids
        self.assertEqual(refund.state, "pending")
        self.assertFalse(refund.payment_id)
        self.assertEqual(refund.refund_move_ids.state, "posted")
        self.assertFalse(order.can_refund_online)

    def test_refused_refund_is_reported_and_posts_no_credit_note(self):
        self.stub.mode = "error"
        order, tx = self._stripe_order(invoiced=True)
        action = order.with_user(self.refunder).action_refund()
        self.assertEqual(action["params"]["type"], "danger")
        self.assertIn("has already been refunded", action["params"]["message"])
        refund = tx.refund_transaction_ids
        self.assertEqual(refund.state, "error")
        self.assertIn("Stripe refused the refund", refund.state_message)
        self.assertFalse(refund.payment_id)
        credit_note = refund.refund_move_ids
        self.assertEqual(credit_note.state, "draft", "kept for the retry, never posted")
        self.assertTrue(order.message_ids.filtered(lambda m: "failed" in (m.body or "")))
        self.assertTrue(order.can_refund_online, "the salesperson can retry")

        # Checked in Stripe's dashboard: nothing was refunded; give it up.
        refund.with_user(self.refunder).action_cancel_refund()
        self.assertEqual(refund.state, "cancel")
        self.assertEqual(credit_note.state, "cancel")
        self.assertEqual(tx.refundable_amount, 50.0)

    def test_failed_status_is_an_error(self):
        self.stub.mode = "failed"
        _order, tx = self._stripe_order()
        refund = tx.with_user(self.refunder).action_refund()
        self.assertEqual(refund.state, "error")
        self.assertIn("expired_or_canceled_card", refund.state_message)
        self.assertFalse(refund.payment_id)

    def test_retry_after_timeout_reuses_the_key_and_refunds_once(self):
        self.stub.mode = "timeout"
        order, tx = self._stripe_order(invoiced=True)
        order.with_user(self.refunder).action_refund()
        refund = tx.refund_transaction_ids
        self.assertEqual(refund.state, "error")
        self.assertIn("did not answer", refund.state_message)
        self.assertEqual(refund.refund_move_ids.state, "draft")
        self.assertFalse(refund.payment_id)
        self.assertEqual(len(self.stub.refunds), 1, "Stripe made it despite the timeout")
        self.assertEqual(tx.refundable_amount, 0.0, "an unknown outcome holds the money")

        self.stub.mode = "succeeded"
        with self.assertRaisesRegex(UserError, "use Retry Refund"):
            order.with_user(self.refunder).action_refund()
        self.assertEqual(len(self.stub.requests), 1, "the Refund button sent nothing")
        order.with_user(self.refunder).action_retry_refund()
        self.assertEqual(tx.refund_transaction_ids, refund, "retried, not doubled")
        self.assertEqual(refund.state, "done")
        self.assertEqual(len(self.stub.requests), 2)
        self.assertEqual(
            {r["idempotency_key"] for r in self.stub.requests}, {refund.refund_idempotency_key}
        )
        self.assertEqual(len(self.stub.refunds), 1, "Stripe refunded once")
        self.assertEqual(refund.refund_move_ids.state, "posted")
        self.assertEqual(refund.refund_move_ids.payment_state, "paid")
        self.assertEqual(refund.payment_id.amount, 50.0)

    def test_payment_without_stripe_reference_is_refused_before_calling_stripe(self):
        _order, tx = self._stripe_order(acquirer_reference=False)
        with self.assertRaisesRegex(UserError, "no Stripe payment reference"):
            tx.with_user(self.refunder).action_refund()
        self.assertFalse(self.stub.requests)
        self.assertFalse(tx.refund_transaction_ids)

    def _age_refund(self, refund, hours):
        """As if the refund's first attempt was ``hours`` ago."""
        self.env["base"].flush()
        self.env.cr.execute(
            "UPDATE payment_transaction SET create_date = create_date - %s * interval '1 hour' "
            "WHERE id = %s",
            [hours, refund.id],
        )
        refund.invalidate_cache()

    def test_retry_after_the_key_window_finds_the_refund_and_never_sends_a_second(self):
        self.stub.mode = "timeout"
        order, tx = self._stripe_order(stripe_payment_intent="pi_stub_24h")
        order.with_user(self.refunder).action_refund()
        refund = tx.refund_transaction_ids
        self.assertEqual(refund.state, "error")
        self.assertEqual(len(self.stub.refunds), 1, "Stripe made it despite the timeout")

        # A day later Stripe has forgotten the idempotency key.
        self.stub.expire_keys()
        self._age_refund(refund, 25)
        self.stub.mode = "succeeded"
        refund.with_user(self.refunder).action_retry_refund()
        self.assertEqual(refund.state, "done")
        self.assertEqual(refund.acquirer_reference, "re_stub_1")
        self.assertEqual(len(self.stub.refunds), 1, "refunded once")
        posts = [r for r in self.stub.requests if r.get("method") == "POST"]
        self.assertEqual(len(posts), 1, "the retry only asked Stripe, it sent nothing")
        [listing] = [r for r in self.stub.requests if r.get("method") == "GET"]
        self.assertEqual(listing["form"]["payment_intent"], "pi_stub_24h")

    def test_refusal_retried_once_fixed_refunds_once_even_after_the_key_window(self):
        self.stub.mode = "error"
        order, tx = self._stripe_order(invoiced=True)
        order.with_user(self.refunder).action_refund()
        refund = tx.refund_transaction_ids
        self.assertEqual(refund.state, "error")
        self.assertFalse(self.stub.refunds)

        # Fixed in Stripe's dashboard two days later.
        self.stub.expire_keys()
        self._age_refund(refund, 48)
        self.stub.mode = "succeeded"
        refund.with_user(self.refunder).action_retry_refund()
        self.assertEqual(refund.state, "done")
        self.assertEqual(len(self.stub.refunds), 1)
        self.assertEqual(
            [r.get("method") for r in self.stub.requests],
            ["POST", "GET", "POST"],
            "checked that Stripe made none, then sent it",
        )
        self.assertEqual(refund.refund_move_ids.payment_state, "paid")

    def test_a_failure_after_stripe_accepted_keeps_the_refund_and_the_cron_finishes_it(self):
        order, tx = self._stripe_order(invoiced=True)
        RefundEngine = type(self.env["sale.order.refund.engine"])
        with (
            patch.object(RefundEngine, "_on_accepted", side_effect=RuntimeError("mail")),
            mute_logger("flectra.addons.website_sale_order_handling.models.refund_engine"),
        ):
            order.with_user(self.refunder).action_refund()
        refund = tx.refund_transaction_ids
        self.assertEqual(refund.state, "done", "Stripe's answer is on record")
        self.assertFalse(refund.is_processed)
        self.assertEqual(refund.refund_move_ids.state, "draft")
        self.assertEqual(len(self.stub.refunds), 1)

        refund.write({"date": fields.Datetime.now() - timedelta(minutes=30)})
        with patch.object(type(self.env.cr), "commit", lambda cr: None):
            self.env["payment.transaction"]._cron_post_process_after_done()
        self.assertTrue(refund.is_processed)
        self.assertEqual(refund.refund_move_ids.state, "posted")
        self.assertEqual(refund.refund_move_ids.payment_state, "paid")
        self.assertEqual(len(self.stub.requests), 1, "the cron never calls Stripe")

    # --- Cancel asks Stripe first ---------------------------------------------

    def test_cancelling_a_refund_stripe_made_records_it_instead(self):
        self.stub.mode = "timeout"
        order, tx = self._stripe_order(invoiced=True)
        order.with_user(self.refunder).action_refund()
        refund = tx.refund_transaction_ids
        self.assertEqual(refund.state, "error")
        self.assertEqual(len(self.stub.refunds), 1, "Stripe made it despite the timeout")

        # Believing nothing happened, the manager cancels it.
        action = refund.with_user(self.refunder).action_cancel_refund()
        self.assertEqual(refund.state, "done", "Stripe's refund is recorded, not cancelled")
        self.assertEqual(refund.acquirer_reference, "re_stub_1")
        self.assertEqual(action["params"]["type"], "warning")
        self.assertIn(refund.reference, action["params"]["message"])
        self.assertEqual(refund.refund_move_ids.state, "posted")
        self.assertEqual(refund.refund_move_ids.payment_state, "paid")
        self.assertEqual(tx.refundable_amount, 0.0)
        self.assertEqual(
            [r.get("method") for r in self.stub.requests],
            ["POST", "GET"],
            "the cancel only asked Stripe",
        )
        # So the next Refund has nothing left to send twice.
        self.stub.mode = "succeeded"
        with self.assertRaisesRegex(UserError, "already fully refunded"):
            order.with_user(self.refunder).action_refund()
        self.assertEqual(len(self.stub.refunds), 1, "refunded once")

    def test_cancelling_an_interrupted_draft_asks_stripe_first(self):
        _order, tx = self._stripe_order(stripe_payment_intent="pi_stub_draft")
        refund = self._engine_reserve_payment_refund(tx, 20.0)
        # The server sent it, then died before recording Stripe's answer.
        Transaction = type(refund)
        with (
            self.assertRaises(ServerDied),
            self.env.cr.savepoint(),
            patch.object(Transaction, "_stripe_apply_refund_answer", side_effect=ServerDied),
        ):
            refund._stripe_send_refund()
        self.assertEqual(refund.state, "draft")
        self.assertEqual(len(self.stub.refunds), 1)
        # Ten minutes later the draft counts as interrupted, and may be cancelled...
        self.env["base"].flush()
        self.env.cr.execute(
            "UPDATE payment_transaction SET write_date = write_date - interval '11 minutes' "
            "WHERE id = %s",
            [refund.id],
        )
        refund.invalidate_cache()
        self.assertTrue(refund._is_failed_refund())

        # ...but Stripe is asked first, and its refund is kept.
        refund.with_user(self.refunder).action_cancel_refund()
        self.assertEqual(refund.state, "done")
        self.assertAlmostEqual(tx.refundable_amount, 30.0)
        [listing] = [r for r in self.stub.requests if r.get("method") == "GET"]
        self.assertEqual(listing["form"]["payment_intent"], "pi_stub_draft")
        self.assertEqual(len(self.stub.refunds), 1)

    def test_a_refund_stripe_cannot_be_asked_about_is_not_cancelled(self):
        self.stub.mode = "timeout"
        order, tx = self._stripe_order(invoiced=True)
        order.with_user(self.refunder).action_refund()
        refund = tx.refund_transaction_ids
        self.assertEqual(refund.state, "error")
        # Stripe cannot be reached (network down): nothing answers on this port.
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            closed_port = probe.getsockname()[1]
        self.env["ir.config_parameter"].sudo().set_param(
            "website_sale_order_handling.stripe_api_url", "http://127.0.0.1:%d/v1/" % closed_port
        )
        with self.assertRaisesRegex(UserError, "Could not ask Stripe"):
            refund.with_user(self.refunder).action_cancel_refund()
        self.assertEqual(refund.state, "error", "still holding its amount")
        self.assertEqual(refund.refund_move_ids.state, "draft")
        self.assertEqual(tx.refundable_amount, 0.0)
