"""A return refunds no more than came back, and gives back its share of
order-level discounts (a real sale_coupon program)."""

import unittest

from flectra.exceptions import UserError
from flectra.tests import tagged

from .refund_common import RefundCase
from .return_common import ReturnMixin


@tagged("post_install", "-at_install")
class TestRefundReturnQuantities(ReturnMixin, RefundCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._setup_return_policy()

    def _received(self, order, requested, received):
        request = self._submit(order, {self.product: requested})
        request.action_approve()
        self._receive(request, {self.product: received})
        self.assertEqual(request.state, "received")
        return request

    def test_more_received_than_requested_refunds_what_was_requested_once(self):
        order, tx = self._paid_order(lines=[(self.product, 2)])
        self._deliver(order)
        line = order.order_line
        # 2 delivered, 1 requested, 2 received (the customer sent both back).
        request = self._received(order, requested=1, received=2)
        self.assertEqual(request.line_ids.quantity_received, 2.0)
        self.assertEqual(request.refund_amount, 50.0, "the requested one, not both")
        request.with_user(self.refunder).action_refund()
        self.assertEqual(request.state, "refunded")
        self.assertEqual(request.refund_transaction_ids.amount, -50.0)
        self.assertEqual(request.line_ids.quantity_refunded, 1.0)
        # Both lamps came back: nothing is left to request, so nothing to refund twice.
        self.assertEqual(line._get_returnable_qty(), 0.0)
        self.assertFalse(order._can_request_return())
        self.assertEqual(tx.refunded_amount, 50.0)

    def _refund_with_return_to_stock(self, order, quantity):
        line = order.order_line.filtered(lambda ln: ln.product_id == self.product)
        result = self._engine_refund(
            order.with_user(self.refunder),
            line_quantities={line: quantity},
            reason="Broken in transit",
            restock=True,
        )
        self.assertEqual(len(result["transfers"]), 1, result)
        return result

    def test_return_to_stock_leaves_a_waiting_request_approvable_for_what_is_left(self):
        order, tx = self._paid_order(lines=[(self.product, 2)])
        self._deliver(order)
        request = self._submit(order, {self.product: 2})
        # Meanwhile a salesperson refunds one lamp, and takes it back.
        self._refund_with_return_to_stock(order, 1)
        request.action_approve()
        self.assertEqual(request.state, "approved")
        self.assertEqual(request.line_ids.quantity, 1.0, "the other lamp is on its way back")
        notes = request.message_ids.mapped("body")
        self.assertTrue(any("Approved for what is left" in note for note in notes), notes)
        self._receive(request)
        self.assertEqual(request.state, "received")
        request.with_user(self.refunder).action_refund()
        self.assertEqual(request.state, "refunded")
        self.assertEqual(request.refund_transaction_ids.amount, -50.0)
        self.assertEqual(tx.refunded_amount, 100.0, "each lamp once")

    def test_return_to_stock_of_everything_makes_a_waiting_request_say_why_not(self):
        order, tx = self._paid_order(lines=[(self.product, 2)])
        self._deliver(order)
        request = self._submit(order, {self.product: 2})
        self._refund_with_return_to_stock(order, 2)
        with self.assertRaisesRegex(UserError, "Nothing of %s is left to" % request.name):
            request.action_approve()
        self.assertEqual(request.state, "requested")
        self.assertEqual(request.line_ids.quantity, 2.0, "what the customer asked is kept")
        self.assertFalse(request.picking_ids)
        self.assertEqual(tx.refunded_amount, 100.0)

    def test_a_waiting_request_of_an_order_refunded_in_full_says_why_not(self):
        order, _tx = self._paid_order(lines=[(self.product, 2)])
        self._deliver(order)
        request = self._submit(order, {self.product: 1})
        # The money went back as an amount: no product is marked refunded.
        self._engine_refund(order.with_user(self.refunder), amount=100.0, reason="Goodwill")
        with self.assertRaisesRegex(UserError, "Nothing of %s is left to refund" % request.name):
            request.action_approve()
        self.assertEqual(request.state, "requested")
        self.assertFalse(request.picking_ids, "no transfer for a refund that cannot come")

    def test_a_coupon_discount_is_shared_out_over_the_returned_lines(self):
        if "coupon.program" not in self.env:
            raise unittest.SkipTest("sale_coupon is not installed")
        self.env["coupon.program"].create(
            {
                "name": "Ten Percent Off",
                "program_type": "promotion_program",
                "promo_code_usage": "no_code_needed",
                "reward_type": "discount",
                "discount_type": "percentage",
                "discount_percentage": 10.0,
                "discount_apply_on": "on_order",
                "rule_minimum_amount": 0.0,
            }
        )
        order = self._create_web_order(lines=[(self.product, 2), (self.service, 5)])
        order.recompute_coupon_lines()
        reward = order.order_line.filtered("is_reward_line")
        self.assertEqual(reward.price_subtotal, -15.0, "10% of 100 + 50")
        self.assertEqual(order.amount_total, 135.0)
        tx = self._pay(order)
        self.assertEqual(order.state, "sale")
        self._deliver(order)
        request = self._received(order, requested=1, received=1)
        # One lamp of 50, less its 10%: 45, not 50.
        self.assertAlmostEqual(request.refund_amount, 45.0)
        request.with_user(self.refunder).action_refund()
        self.assertAlmostEqual(request.refund_transaction_ids.amount, -45.0)
        self.assertAlmostEqual(order.online_refundable_amount, 90.0)
        self.assertEqual(tx.refund_transaction_ids, request.refund_transaction_ids)

    def test_a_coupon_discount_is_credited_with_the_returned_line_of_an_invoiced_order(self):
        if "coupon.program" not in self.env:
            raise unittest.SkipTest("sale_coupon is not installed")
        self.env["coupon.program"].create(
            {
                "name": "Twenty Percent Off",
                "program_type": "promotion_program",
                "promo_code_usage": "no_code_needed",
                "reward_type": "discount",
                "discount_type": "percentage",
                "discount_percentage": 20.0,
                "discount_apply_on": "on_order",
            }
        )
        self.env["ir.config_parameter"].sudo().set_param("sale.automatic_invoice", "True")
        order = self._create_web_order(lines=[(self.product, 4)])
        order.recompute_coupon_lines()
        self.assertEqual(order.amount_total, 160.0)
        self._pay(order)
        self._deliver(order)
        request = self._received(order, requested=1, received=1)
        request.with_user(self.refunder).action_refund()
        credit_note = order.invoice_ids.filtered(lambda move: move.move_type == "out_refund")
        self.assertEqual(credit_note.state, "posted")
        self.assertAlmostEqual(credit_note.amount_total, 40.0)
        self.assertAlmostEqual(request.refund_transaction_ids.amount, -40.0)
        self.assertEqual(credit_note.payment_state, "paid")
