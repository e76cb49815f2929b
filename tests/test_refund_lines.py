"""Partial refunds of returned lines, and refunds accounting pays by hand."""

from unittest.mock import patch

from flectra.exceptions import AccessError, UserError
from flectra.tests import tagged
from flectra.tools.safe_eval import safe_eval

from .refund_common import RefundCase


@tagged("post_install", "-at_install")
class TestRefundLines(RefundCase):
    def test_refund_lines_of_invoiced_order_credits_only_those_lines_with_taxes(self):
        self._set_taxes(self.product, 21.0)
        order, tx = self._paid_order(lines=[(self.product, 3), (self.service, 1)], invoiced=True)
        self.assertEqual(order.amount_total, 191.5)  # 3 x 50 x 1.21 + 10
        lamp_line = order.order_line.filtered(lambda line: line.product_id == self.product)

        refund = self._engine_refund_lines(order, {lamp_line: 2}, description="Return RMA/0001")

        self.assertEqual(refund.state, "done")
        self.assertEqual(refund.amount, -121.0)
        credit_note = refund.refund_move_ids
        self.assertEqual(credit_note.move_type, "out_refund")
        self.assertEqual(credit_note.state, "posted")
        self.assertEqual(credit_note.ref, "Return RMA/0001")
        self.assertEqual(credit_note.invoice_line_ids.product_id, self.product)
        self.assertEqual(credit_note.invoice_line_ids.quantity, 2)
        self.assertEqual(credit_note.amount_total, 121.0)
        self.assertEqual(credit_note.payment_state, "paid")
        self.assertEqual(refund.payment_id.amount, 121.0)
        self.assertEqual(lamp_line.qty_invoiced, 1)
        self.assertAlmostEqual(order.online_refundable_amount, 70.5)

        # The rest of the order can still be refunded in full, never more.
        with self.assertRaisesRegex(UserError, "left to refund"):
            self._engine_refund_lines(order, {lamp_line: 2})
        order.with_user(self.refunder).action_refund()
        self.assertEqual(order.online_refundable_amount, 0.0)
        second = tx.refund_transaction_ids - refund
        self.assertEqual(second.amount, -70.5)
        self.assertEqual(
            second.refund_move_ids.invoice_line_ids.mapped(
                lambda line: (line.product_id, line.quantity)
            ),
            [(self.product, 1.0), (self.service, 1.0)],
        )
        self.assertEqual(second.refund_move_ids.amount_total, 70.5)
        self.assertEqual(second.refund_move_ids.payment_state, "paid")

    def test_refund_lines_of_order_not_invoiced_refunds_the_payment_only(self):
        self._set_taxes(self.product, 10.0)
        order, tx = self._paid_order(lines=[(self.product, 2)])
        line = order.order_line
        refund = self._engine_refund_lines(order, {line: 1})
        self.assertEqual(refund.amount, -55.0)
        self.assertFalse(refund.refund_move_ids)
        self.assertFalse(order.invoice_ids)
        self.assertEqual(refund.source_transaction_id, tx)

    def test_refund_lines_cannot_exceed_what_was_paid(self):
        order, tx = self._paid_order(lines=[(self.product, 2)])
        line = order.order_line
        with self.assertRaisesRegex(UserError, "the order has"):
            self._engine_refund_lines(order, {line: 3})
        self._engine_refund_lines(order, {line: 2})
        with self.assertRaisesRegex(UserError, "left to refund"):
            self._engine_refund_lines(order, {line: 1})
        self.assertEqual(len(tx.refund_transaction_ids), 1)
        with self.assertRaisesRegex(UserError, "already fully refunded"):
            tx.action_refund(0.01)

    def test_refund_lines_refuses_an_acquirer_without_partial_refunds(self):
        manual = self.env["payment.acquirer"].create(
            {
                "name": "Pay by Cheque",
                "provider": "manual",
                "state": "enabled",
                "journal_id": self.bank_journal.id,
            }
        )
        order, tx = self._paid_order(lines=[(self.product, 2)], invoiced=True, acquirer=manual)
        with self.assertRaisesRegex(UserError, "Pay by Cheque cannot refund"):
            self._engine_refund_lines(order, {order.order_line: 1})
        self.assertFalse(tx.refund_transaction_ids)
        self.assertFalse(order.invoice_ids.filtered(lambda m: m.move_type == "out_refund"))

    def test_full_only_acquirer_refunds_whole_payment_but_not_part(self):
        acquirer = self.env["payment.acquirer"].create(
            {
                "name": "All Or Nothing Pay",
                "provider": "manual",
                "state": "enabled",
                "journal_id": self.bank_journal.id,
            }
        )
        order, tx = self._paid_order(lines=[(self.product, 2)], acquirer=acquirer)
        # As a provider module declaring full-only support would.
        support = dict(acquirer._get_refund_support(), manual="full_only")
        with patch.object(type(acquirer), "_get_refund_support", lambda self: support):
            acquirer.invalidate_cache()
            self.assertEqual(acquirer.support_refund, "full_only")
            with self.assertRaisesRegex(UserError, "can only refund a payment in full"):
                self._engine_check_refundable(tx, 50.0)
            with self.assertRaisesRegex(UserError, "All Or Nothing Pay cannot refund part"):
                self._engine_refund_lines(order, {order.order_line: 1})
            self._engine_check_refundable(tx, 100.0)

    def test_transfer_refund_waits_in_refunds_to_pay_until_marked_paid(self):
        order, tx = self._paid_order(
            lines=[(self.product, 1)], invoiced=True, acquirer=self.acquirer_transfer
        )
        order.with_user(self.refunder).action_refund()
        refund = tx.refund_transaction_ids
        self.assertEqual(refund.state, "pending")
        self.assertFalse(refund.payment_id)
        self.assertEqual(refund.refund_move_ids.state, "posted", "the customer is owed it")
        self.assertEqual(refund.refund_move_ids.payment_state, "not_paid")
        self.assertFalse(order.can_refund_online, "a pending refund holds the money")

        action = self.env.ref(
            "website_sale_order_handling.payment_transaction_action_refunds_to_pay"
        )
        menus = self.env["ir.ui.menu"].search(
            [("action", "=", "ir.actions.act_window,%d" % action.id)]
        )
        self.assertEqual(
            set(menus.mapped("parent_id")),
            {
                self.env.ref("website_sale.menu_orders"),
                self.env.ref("account.menu_finance_receivables"),
            },
        )
        mail = order.message_ids.filtered(lambda m: "refund" in (m.subject or "").lower())
        self.assertIn("on its way", mail.body, "the customer is told the money is coming")
        domain = safe_eval(action.domain)
        self.assertIn(refund, self.env["payment.transaction"].search(domain))

        with self.assertRaises(AccessError):
            refund.with_user(self.salesman).action_mark_refund_paid()
        self.assertEqual(refund.state, "pending")
        accountant = self.env["res.users"].create(
            {
                "name": "Alice Accountant",
                "login": "refund_accountant",
                "groups_id": [(6, 0, [self.env.ref("account.group_account_invoice").id])],
            }
        )
        refund.with_user(accountant).action_mark_refund_paid()
        self.assertEqual(refund.state, "done")
        self.assertEqual(refund.payment_id.payment_type, "outbound")
        self.assertEqual(refund.payment_id.journal_id, self.acquirer_transfer.journal_id)
        self.assertEqual(refund.refund_move_ids.payment_state, "paid")
        self.assertNotIn(refund, self.env["payment.transaction"].search(domain))
        with self.assertRaisesRegex(UserError, "not a pending refund"):
            refund.action_mark_refund_paid()
