"""Which acquirers can refund, as the acquirer form shows it."""

from flectra.tests import tagged

from .refund_common import RefundCase


@tagged("post_install", "-at_install")
class TestRefundAcquirer(RefundCase):
    def test_refund_support_follows_the_provider(self):
        self.assertEqual(self.acquirer_test.support_refund, "partial")
        self.assertEqual(self.acquirer_transfer.support_refund, "partial")
        self.assertTrue(self.acquirer_transfer.refund_by_accounting)
        self.assertFalse(self.acquirer_test.refund_by_accounting)
        stripe = self.env["payment.acquirer"].search([("provider", "=", "stripe")], limit=1)
        if stripe:  # payment_stripe installed
            self.assertEqual(stripe.support_refund, "partial")
        manual = self.env["payment.acquirer"].create({"name": "Custom Form", "provider": "manual"})
        self.assertEqual(manual.support_refund, "none")
        # A pay-in-store acquirer is a transfer acquirer: refunded by accounting.
        store = self.env["payment.acquirer"].create(
            {"name": "Pay in Store", "provider": "transfer"}
        )
        self.assertEqual(store.support_refund, "partial")
        self.assertTrue(store.refund_by_accounting)

    def test_acquirer_form_shows_refund_support(self):
        arch = self.env["payment.acquirer"].fields_view_get(
            view_id=self.env.ref("payment.acquirer_form").id, view_type="form"
        )["arch"]
        self.assertIn('name="support_refund"', arch)
