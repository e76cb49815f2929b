"""A received return is refunded through the order's refund capability."""

from flectra.exceptions import AccessError, UserError
from flectra.tests import tagged

from .refund_common import RefundCase
from .return_common import ReturnMixin


@tagged("post_install", "-at_install")
class TestReturnRefund(ReturnMixin, RefundCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._setup_return_policy()
        RefundCase._set_taxes(cls, cls.product, 20.0)

    def _received_return(self, acquirer=None, returned=2, **tx_values):
        """Order 5 lamps at 50 + 20% VAT, paid online, delivered; 2 come back."""
        order, tx = self._paid_order(lines=[(self.product, 5)], acquirer=acquirer, **tx_values)
        self._deliver(order)
        request = self._submit(order, {self.product: returned})
        request.action_approve()
        self._receive(request)
        self.assertEqual(request.state, "received")
        return order, tx, request

    def test_refund_pays_back_the_returned_lines_with_taxes(self):
        order, tx, request = self._received_return()
        self.assertAlmostEqual(request.refund_amount, 120.0)
        request.with_user(self.refunder).action_refund()
        self.assertEqual(request.state, "refunded")
        refund = request.refund_transaction_ids
        self.assertEqual(refund.state, "done")
        self.assertAlmostEqual(refund.amount, -120.0)
        self.assertEqual(refund.source_transaction_id, tx)
        self.assertAlmostEqual(order.online_refundable_amount, 300.0 - 120.0)

    def test_request_and_ledger_follow_their_refunds_state_in_one_transaction(self):
        """has_failed_refund and the ledger's Refund Status do not depend on the
        refunds' state (every checkout's payment would look them up): read
        before and after a state change in one transaction, they follow it."""
        _order, _tx, request = self._received_return()
        request.with_user(self.refunder).action_refund()
        refund = request.refund_transaction_ids
        ledger = refund.sudo().refund_ledger_ids
        self.assertTrue(ledger)
        self.assertFalse(request.has_failed_refund)
        self.assertEqual(set(ledger.mapped("refund_state")), {"done"})
        refund._set_refund_state("error", "Chargeback")
        self.assertTrue(request.has_failed_refund)
        self.assertEqual(set(ledger.mapped("refund_state")), {"error"})

    def test_refund_of_an_invoiced_order_credits_only_the_returned_lines(self):
        order, _tx = self._paid_order(lines=[(self.product, 5)], invoiced=True)
        self._deliver(order)
        request = self._submit(order, {self.product: 2})
        request.action_approve()
        self._receive(request)
        request.with_user(self.refunder).action_refund()
        credit_note = order.invoice_ids.filtered(lambda move: move.move_type == "out_refund")
        self.assertEqual(credit_note.state, "posted")
        self.assertEqual(credit_note.invoice_line_ids.quantity, 2)
        self.assertAlmostEqual(credit_note.amount_total, 120.0)
        self.assertEqual(credit_note.payment_state, "paid")

    def test_salesperson_without_the_refund_right_is_refused(self):
        _order, _tx, request = self._received_return()
        with self.assertRaises(AccessError):
            request.with_user(self.salesman).action_refund()
        self.assertEqual(request.state, "received")

    def test_acquirer_without_partial_refunds_is_refused_and_nothing_changes(self):
        manual = self.env["payment.acquirer"].create(
            {
                "name": "Cash on the counter",
                "provider": "manual",
                "state": "test",
                "journal_id": self.bank_journal.id,
            }
        )
        self.assertEqual(manual.support_refund, "none")
        _order, tx, request = self._received_return(acquirer=manual)
        with self.assertRaises(UserError):
            request.with_user(self.refunder).action_refund()
        self.assertEqual(request.state, "received")
        self.assertFalse(tx.refund_transaction_ids)

    def test_refused_refund_stays_received_and_a_retry_reuses_it(self):
        stripe, stub = self._stripe_with_stub()
        _order, _tx, request = self._received_return(acquirer=stripe, acquirer_reference="ch_ret_1")
        stub.mode = "error"
        request.with_user(self.refunder).action_refund()
        self.assertEqual(request.state, "received", "the money did not leave")
        refund = request.refund_transaction_ids
        self.assertEqual(refund.state, "error")
        stub.mode = "succeeded"
        self.assertTrue(request.has_failed_refund, "the form shows Retry Refund instead")
        with self.assertRaisesRegex(UserError, "use Retry Refund"):
            request.with_user(self.refunder).action_refund()
        request.with_user(self.refunder).action_retry_refund()
        self.assertEqual(request.refund_transaction_ids, refund, "the same refund, retried")
        self.assertEqual(refund.state, "done")
        self.assertEqual(request.state, "refunded")
        keys = {sent["idempotency_key"] for sent in stub.requests}
        self.assertEqual(keys, {refund.refund_idempotency_key})
        self.assertEqual(stub.requests[-1]["form"]["amount"], "12000")
