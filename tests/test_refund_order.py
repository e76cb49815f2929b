"""Full refund from the order: credit note, refund payment, chatter, email, refusals."""

import json
from datetime import timedelta
from unittest.mock import patch

from lxml import etree

from flectra import fields
from flectra.exceptions import AccessError, UserError
from flectra.tests import Form, tagged

from .refund_common import RefundCase


@tagged("post_install", "-at_install")
class TestRefundOrder(RefundCase):
    def test_refund_of_invoiced_order_posts_reconciled_credit_note_and_payment(self):
        order, tx = self._paid_order(lines=[(self.product, 2)], invoiced=True)
        invoice = order.invoice_ids
        self.assertEqual(invoice.payment_state, "paid")
        self.assertTrue(order.can_refund_online)

        order.with_user(self.refunder).action_refund()

        refund = tx.refund_transaction_ids
        self.assertEqual(len(refund), 1)
        self.assertTrue(refund.is_refund)
        self.assertEqual(refund.state, "done")
        self.assertEqual(refund.amount, -100.0)
        self.assertEqual(refund.reference, "R-%s-1" % tx.reference)
        credit_note = refund.refund_move_ids
        self.assertEqual(credit_note.move_type, "out_refund")
        self.assertEqual(credit_note.reversed_entry_id, invoice)
        self.assertEqual(credit_note.state, "posted")
        self.assertEqual(credit_note.amount_total, 100.0)
        self.assertEqual(credit_note.payment_state, "paid")
        payment = refund.payment_id
        self.assertEqual(payment.payment_type, "outbound")
        self.assertEqual(payment.amount, 100.0)
        self.assertEqual(payment.state, "posted")
        self.assertEqual(invoice.payment_state, "paid", "the invoice keeps its own payment")
        self.assertFalse(order.can_refund_online)
        self.assertEqual(order.online_refundable_amount, 0.0)

    def test_refund_of_order_paid_but_not_invoiced_refunds_only_the_payment(self):
        order, tx = self._paid_order(lines=[(self.product, 1)])
        self.assertFalse(order.invoice_ids)
        order.with_user(self.refunder).action_refund()
        refund = tx.refund_transaction_ids
        self.assertEqual(refund.state, "done")
        self.assertEqual(refund.amount, -50.0)
        self.assertFalse(refund.refund_move_ids)
        self.assertFalse(order.invoice_ids)
        self.assertEqual(refund.payment_id.payment_type, "outbound")
        self.assertEqual(refund.payment_id.state, "posted")

    def test_refund_posts_in_chatter_and_emails_the_customer(self):
        order, tx = self._paid_order()
        order.with_user(self.refunder).action_refund()
        refund = tx.refund_transaction_ids
        notes = order.message_ids.filtered(lambda m: refund.reference in (m.body or ""))
        self.assertTrue(notes, "the chatter says which refund was made")
        mail = order.message_ids.filtered(
            lambda m: self.customer in m.partner_ids and "refund" in (m.subject or "").lower()
        )
        self.assertEqual(len(mail), 1)
        self.assertIn("50.00", mail.body)

    def test_unsupported_acquirer_is_named_and_nothing_changes(self):
        manual = self.env["payment.acquirer"].create(
            {
                "name": "Cash on Delivery",
                "provider": "manual",
                "state": "enabled",
                "journal_id": self.bank_journal.id,
            }
        )
        self.assertEqual(manual.support_refund, "none")
        order, tx = self._paid_order(invoiced=True, acquirer=manual)
        messages = len(order.message_ids)
        with self.assertRaises(UserError) as error:
            order.with_user(self.refunder).action_refund()
        self.assertIn("Cash on Delivery", str(error.exception))
        self.assertIn("Payment Acquirers", str(error.exception))
        self.assertFalse(tx.refund_transaction_ids)
        self.assertEqual(order.invoice_ids.move_type, "out_invoice", "no credit note")
        self.assertEqual(len(order.message_ids), messages)

    def test_unpaid_cancelled_and_fully_refunded_orders_refuse_and_hide_the_button(self):
        unpaid = self._create_web_order()
        unpaid.action_confirm()
        self.assertFalse(unpaid.can_refund_online)
        with self.assertRaisesRegex(UserError, "not paid online"):
            unpaid.with_user(self.refunder).action_refund()

        cancelled, _tx = self._paid_order()
        cancelled.action_cancel()
        self.assertFalse(cancelled.can_refund_online)
        with self.assertRaisesRegex(UserError, "cancelled"):
            cancelled.with_user(self.refunder).action_refund()

        refunded, tx = self._paid_order()
        refunded.with_user(self.refunder).action_refund()
        self.assertFalse(refunded.can_refund_online)
        with self.assertRaisesRegex(UserError, "already fully refunded"):
            refunded.with_user(self.refunder).action_refund()
        self.assertEqual(len(tx.refund_transaction_ids), 1)

    def test_double_click_refunds_once(self):
        order, tx = self._paid_order()
        order.with_user(self.refunder).action_refund()
        with self.assertRaises(UserError):
            order.with_user(self.refunder).action_refund()
        with self.assertRaises(UserError):
            tx.with_user(self.refunder).action_refund()
        self.assertEqual(len(tx.refund_transaction_ids), 1)
        self.assertEqual(tx.refunded_amount, 50.0)

    def test_refund_needs_the_refund_group(self):
        order, tx = self._paid_order()
        self.assertFalse(self.salesman.has_group("website_sale_order_handling.group_order_refund"))
        self.assertTrue(self.refunder.has_group("website_sale_order_handling.group_order_refund"))
        with self.assertRaises(AccessError):
            order.with_user(self.salesman).action_refund()
        with self.assertRaises(AccessError):
            tx.with_user(self.salesman).action_refund()
        self.assertFalse(tx.refund_transaction_ids)
        # The button is only shown to those who may use it.
        self.assertTrue(self._refund_button_modifiers(self.salesman)["invisible"])
        self.assertEqual(
            self._refund_button_modifiers(self.refunder)["invisible"],
            ["|", ["can_refund_online", "=", False], ["has_failed_refund", "=", True]],
        )

    def _refund_button_modifiers(self, user):
        arch = (
            self.env["sale.order"]
            .with_user(user)
            .fields_view_get(view_id=self.env.ref("sale.view_order_form").id, view_type="form")[
                "arch"
            ]
        )
        [button] = etree.fromstring(arch).xpath("//button[@name='action_open_refund_wizard']")
        return json.loads(button.get("modifiers"))

    def test_refund_is_not_a_sale_payment_for_the_post_processing_cron(self):
        self.env["ir.config_parameter"].sudo().set_param("sale.automatic_invoice", "True")
        order = self._create_web_order()
        tx = self._pay(order)
        invoices = order.invoice_ids
        order.with_user(self.refunder).action_refund()
        refund = tx.refund_transaction_ids
        self.assertTrue(refund.is_processed)
        self.assertFalse(refund.sale_order_ids)
        self.assertNotIn(refund, order.transaction_ids)
        # Even when it looks unprocessed and old enough for the cron.
        refund.write(
            {
                "is_processed": False,
                "date": fields.Datetime.now() - timedelta(minutes=30),
            }
        )
        payments = self.env["account.payment"].search_count([])
        # The cron commits after each transaction: not inside a test.
        with patch.object(type(self.env.cr), "commit", lambda cr: None):
            self.env["payment.transaction"]._cron_post_process_after_done()
        self.assertEqual(self.env["account.payment"].search_count([]), payments)
        self.assertEqual(
            order.invoice_ids.filtered(lambda m: m.move_type == "out_invoice"), invoices
        )
        self.assertEqual(order.state, "sale")
        self.assertEqual(order.get_portal_last_transaction(), tx)

    def test_refund_of_a_stored_product_order_with_taxes_credits_the_taxes(self):
        self._set_taxes(self.product, 21.0)
        order, tx = self._paid_order(lines=[(self.product, 2)], invoiced=True)
        self.assertEqual(order.amount_total, 121.0)
        order.with_user(self.refunder).action_refund()
        refund = tx.refund_transaction_ids
        self.assertEqual(refund.amount, -121.0)
        self.assertEqual(refund.refund_move_ids.amount_total, 121.0)
        self.assertEqual(refund.refund_move_ids.payment_state, "paid")

    def test_a_new_order_form_opens_before_it_has_a_currency(self):
        """The refund figures of an order not saved yet, without a pricelist
        (hence no currency), are nothing to refund, never an error: delivery's
        own tests open such forms."""
        order_form = Form(self.env["sale.order"])
        self.assertEqual(order_form.online_refundable_amount, 0.0)
        order_form.partner_id = self.customer
        with order_form.order_line.new() as line:
            line.product_id = self.product
        order = order_form.save()
        self.assertFalse(order.can_refund_online)
