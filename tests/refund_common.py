import unittest

from flectra.tests import new_test_user

from .common import OrderHandlingCase


class RefundCase(OrderHandlingCase):
    """Paid web orders and the users who refund them."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.bank_journal = cls.env["account.journal"].search(
            [("type", "=", "bank"), ("company_id", "=", cls.company.id)], limit=1
        )
        cls.acquirer_test = cls.env.ref("payment_test.payment_acquirer_test")
        if not cls.acquirer_test.journal_id:
            cls.acquirer_test.journal_id = cls.bank_journal
        cls.acquirer_transfer = cls.env.ref("payment.payment_acquirer_transfer")
        if not cls.acquirer_transfer.journal_id:
            cls.acquirer_transfer.journal_id = cls.bank_journal
        # Amounts in the company's currency, whatever the shop's default pricelist.
        cls.customer.property_product_pricelist = cls.env["product.pricelist"].create(
            {"name": "Refund Test Pricelist", "currency_id": cls.company.currency_id.id}
        )
        cls.refunder = new_test_user(
            cls.env, login="refund_manager", name="Rita Refunder",
            groups="sales_team.group_sale_manager",
        )
        cls.salesman = new_test_user(
            cls.env, login="refund_salesman", name="Sam Salesman",
            groups="sales_team.group_sale_salesman_all_leads",
        )

    @classmethod
    def _require_stripe(cls):
        """Stripe refunds are tested where payment_stripe is installed (tools/test
        installs it); the add-on does not depend on it."""
        if "stripe" not in dict(cls.env["payment.acquirer"]._fields["provider"].selection):
            raise unittest.SkipTest("payment_stripe is not installed")

    def _pay(self, order, acquirer=None, **tx_values):
        """Pay the order online the way the shop does, and post-process it."""
        tx = order._create_payment_transaction(
            dict({"acquirer_id": (acquirer or self.acquirer_test).id}, **tx_values)
        )
        tx._set_transaction_done()
        tx._post_process_after_done()
        self.assertEqual(tx.state, "done")
        return tx

    def _paid_order(self, lines=None, invoiced=False, acquirer=None, **tx_values):
        self.env["ir.config_parameter"].sudo().set_param(
            "sale.automatic_invoice", "True" if invoiced else ""
        )
        order = self._create_web_order(lines=lines)
        tx = self._pay(order, acquirer, **tx_values)
        self.assertEqual(order.state, "sale")
        return order, tx

    def _set_taxes(self, product, percent):
        tax = self.env["account.tax"].create(
            {"name": "Test VAT %s%%" % percent, "amount": percent, "type_tax_use": "sale"}
        )
        product.taxes_id = [(6, 0, tax.ids)]
        return tax
