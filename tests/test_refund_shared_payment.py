"""A payment that paid several orders: each order refunds its own share only."""

from unittest.mock import patch

from flectra.exceptions import UserError
from flectra.tests import tagged

from .refund_common import RefundCase
from .return_common import ReturnMixin


@tagged("post_install", "-at_install")
class TestRefundSharedPayment(ReturnMixin, RefundCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._setup_return_policy()

    def _pay_together(self, orders, acquirer=None, **tx_values):
        """One payment for all ``orders``, as a cart checkout of several would."""
        tx = self._pay(orders, acquirer, **tx_values)
        self.assertEqual(tx.sale_order_ids, orders)
        # Flectra confirms an order only when a payment is exactly its amount:
        # the salesperson confirms orders paid together.
        orders.action_confirm()
        return tx

    def _pay_part(self, orders, amount):
        """A payment of ``amount`` only (the shop took the rest another way),
        captured for that amount."""
        tx = self.env["payment.transaction"].create(
            {
                "acquirer_id": self.acquirer_test.id,
                "amount": amount,
                "currency_id": orders[:1].currency_id.id,
                "partner_id": orders[:1].partner_id.id,
                "sale_order_ids": [(6, 0, orders.ids)],
            }
        )
        tx._set_transaction_done()
        tx._post_process_after_done()
        self.assertEqual(tx.state, "done")
        orders.filtered(lambda order: order.state == "draft").action_confirm()
        return tx

    def _two_orders(self):
        """115.00 (2 lamps, 1.5 setups) and 34.50 (3.45 setups), paid by one 149.50."""
        first = self._create_web_order(lines=[(self.product, 2), (self.service, 1.5)])
        second = self._create_web_order(lines=[(self.service, 3.45)])
        self.assertEqual((first.amount_total, second.amount_total), (115.0, 34.5))
        return first, second

    def _refund_both_in_turn(self, acquirer=None, **tx_values):
        first, second = self._two_orders()
        tx = self._pay_together(first | second, acquirer, **tx_values)
        self.assertEqual(tx.amount, 149.5)
        self.assertEqual(first.online_refundable_amount, 115.0)
        self.assertEqual(second.online_refundable_amount, 34.5)

        first.with_user(self.refunder).action_refund()
        first_refund = tx.refund_transaction_ids
        self.assertEqual(first_refund.amount, -115.0, "only the first order's share")
        self.assertEqual(first.online_refundable_amount, 0.0)
        self.assertFalse(first.can_refund_online)
        self.assertEqual(second.online_refundable_amount, 34.5, "the second order keeps its money")
        self.assertTrue(second.can_refund_online)

        second.with_user(self.refunder).action_refund()
        second_refund = tx.refund_transaction_ids - first_refund
        self.assertEqual(second_refund.amount, -34.5)
        self.assertEqual(tx.refunded_amount, 149.5, "the refunds add up to the payment")
        self.assertEqual(tx.refundable_amount, 0.0)
        self.assertEqual(first.refund_transaction_ids, first_refund)
        self.assertEqual(second.refund_transaction_ids, second_refund)
        for order in first | second:
            with self.assertRaisesRegex(UserError, "already fully refunded"):
                order.with_user(self.refunder).action_refund()
        return first_refund | second_refund

    def test_one_payment_for_two_orders_each_refunds_its_own_share(self):
        refunds = self._refund_both_in_turn()
        self.assertEqual(set(refunds.mapped("state")), {"done"})

    def test_one_payment_for_two_orders_on_stripe(self):
        stripe, stub = self._stripe_with_stub()
        refunds = self._refund_both_in_turn(stripe, stripe_payment_intent="pi_shared_1")
        self.assertEqual(set(refunds.mapped("state")), {"done"})
        self.assertEqual([r["form"]["amount"] for r in stub.requests], ["11500", "3450"])
        self.assertEqual({r["form"]["payment_intent"] for r in stub.requests}, {"pi_shared_1"})

    def test_one_order_paid_by_two_payments_refunds_both_and_no_more(self):
        order = self._create_web_order(lines=[(self.product, 2)])
        other = self._create_web_order(lines=[(self.service, 3)])
        first_tx = self._pay_part(order, 60.0)
        # The second payment paid the rest of the order (40) and the other order (30).
        second_tx = self._pay_part(order | other, 70.0)
        self.assertEqual(order.online_refundable_amount, 100.0)
        self.assertEqual(other.online_refundable_amount, 30.0)

        order.with_user(self.refunder).action_refund()
        self.assertEqual(first_tx.refund_transaction_ids.amount, -60.0)
        self.assertEqual(second_tx.refund_transaction_ids.amount, -40.0)
        self.assertEqual(order.online_refundable_amount, 0.0)
        self.assertEqual(other.online_refundable_amount, 30.0)

        other.with_user(self.refunder).action_refund()
        self.assertEqual(sorted(second_tx.refund_transaction_ids.mapped("amount")), [-40.0, -30.0])
        for tx in first_tx | second_tx:
            self.assertEqual(tx.refunded_amount, tx.amount, "no payment refunds more than it took")

    def _refund_lamps_over_two_payments(self, invoiced=False, second="done"):
        """2 lamps (100) paid 60 + 40 (the second payment also paid another
        order): refunding both lamps splits into two refunds. The first is
        refused; the second ends ``second`` (done, or draft: interrupted)."""
        order = self._create_web_order(lines=[(self.product, 2)])
        other = self._create_web_order(lines=[(self.service, 3)])
        first_tx = self._pay_part(order, 60.0)
        second_tx = self._pay_part(order | other, 70.0)
        if invoiced:
            self._deliver(order)
            order._create_invoices()._post()
            self.assertEqual(order.invoice_ids.mapped("state"), ["posted"])
        lamps = order.order_line

        def answer(refund):
            if refund.source_transaction_id == first_tx:
                refund._set_refund_state("error", "Card expired")
            elif second == "done":
                refund._set_refund_state("done")

        with patch.object(type(first_tx), "_test_send_refund", answer):
            self._engine_refund(
                order.with_user(self.refunder), line_quantities={lamps: 2}, reason="Recall"
            )
        refused = first_tx.refund_transaction_ids
        other_part = second_tx.refund_transaction_ids
        self.assertEqual((refused.state, -refused.amount), ("error", 60.0))
        self.assertEqual((other_part.state, -other_part.amount), (second, 40.0))
        self.assertEqual(other_part.refund_first_id, refused)
        return order, lamps, refused, other_part

    def test_cancelling_one_refund_of_a_split_keeps_its_products_refunded(self):
        order, lamps, refused, _paid = self._refund_lamps_over_two_payments()
        refused.with_user(self.refunder).action_cancel_refund()
        self.assertEqual(refused.state, "cancel")
        Ledger = self.env["sale.order.refund.line"]
        self.assertNotIn(lamps, Ledger._get_left_quantities(order), "paid by the other part")
        with self.assertRaisesRegex(UserError, "left to refund"):
            self._engine_refund(
                order.with_user(self.refunder), line_quantities={lamps: 1}, reason="Again"
            )
        self.assertEqual(order.online_refundable_amount, 60.0, "the cancelled part's money")
        self.assertIn("stay refunded", order.message_ids[0].body)

    def test_cancelling_one_refund_of_a_split_keeps_the_credit_note_of_the_other(self):
        _order, _lamps, refused, interrupted = self._refund_lamps_over_two_payments(
            invoiced=True, second="draft"
        )
        credit_note = refused.refund_move_ids
        self.assertEqual(credit_note, interrupted.refund_move_ids)
        self.assertEqual(credit_note.state, "draft")
        refused.with_user(self.refunder).action_cancel_refund()
        self.assertEqual(credit_note.state, "draft", "the other refund still holds it")
        # The interrupted one is retried later and goes through.
        self.env["base"].flush()
        self.env.cr.execute(
            "UPDATE payment_transaction SET write_date = write_date - interval '11 minutes' "
            "WHERE id = %s",
            [interrupted.id],
        )
        interrupted.invalidate_cache()
        interrupted.with_user(self.refunder).action_retry_refund()
        self.assertEqual(interrupted.state, "done")
        self.assertEqual(credit_note.state, "posted")

    def test_return_refund_on_an_order_whose_payment_is_shared(self):
        self._set_taxes(self.product, 20.0)
        lamps = self._create_web_order(lines=[(self.product, 5)])  # 300.00
        setup = self._create_web_order(lines=[(self.service, 2)])  # 20.00
        tx = self._pay_together(lamps | setup)
        self._deliver(lamps)
        request = self._submit(lamps, {self.product: 2})
        request.action_approve()
        self._receive(request)
        request.with_user(self.refunder).action_refund()
        self.assertEqual(request.state, "refunded")
        self.assertAlmostEqual(request.refund_transaction_ids.amount, -120.0)
        self.assertAlmostEqual(lamps.online_refundable_amount, 180.0)
        self.assertAlmostEqual(setup.online_refundable_amount, 20.0)

        setup.with_user(self.refunder).action_refund()
        self.assertAlmostEqual(
            (tx.refund_transaction_ids - request.refund_transaction_ids).amount, -20.0
        )
        lamps.with_user(self.refunder).action_refund()
        self.assertAlmostEqual(tx.refunded_amount, 320.0)
        self.assertEqual(tx.refundable_amount, 0.0)
