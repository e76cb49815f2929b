"""Two companies: every money and stock document of an order belongs to the
order's company, whichever company the user who acts on it works in."""

from datetime import timedelta

from flectra import fields
from flectra.addons.website.tools import MockRequest
from flectra.tests import new_test_user, tagged

from .refund_common import RefundCase
from .return_common import ReturnMixin


@tagged("post_install", "-at_install")
class TestMultiCompany(ReturnMixin, RefundCase):
    """Shop B belongs to company B; the users work in company A, with B allowed."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company_a = cls.company
        cls.company_b = cls.env["res.company"].create(
            {
                "name": "Shop B Company",
                "currency_id": cls.company_a.currency_id.id,
                "email": "shop-b@example.com",
            }
        )
        cls.env.user.company_ids |= cls.company_b
        cls.company_a.chart_template_id.try_loading(company=cls.company_b)
        cls.bank_b = cls.env["account.journal"].search(
            [("type", "=", "bank"), ("company_id", "=", cls.company_b.id)], limit=1
        )
        cls.warehouse_b = cls.env["stock.warehouse"].search(
            [("company_id", "=", cls.company_b.id)], limit=1
        )
        cls.env["stock.quant"]._update_available_quantity(
            cls.product, cls.warehouse_b.lot_stock_id, 100.0
        )
        cls.acquirer_b = cls.acquirer_test.copy(
            {"company_id": cls.company_b.id, "journal_id": cls.bank_b.id, "state": "test"}
        )
        both = [(6, 0, (cls.company_a | cls.company_b).ids)]
        cls.seller_b = new_test_user(
            cls.env,
            login="mc_seller_b",
            groups="sales_team.group_sale_salesman",
            company_id=cls.company_b.id,
            company_ids=[(6, 0, cls.company_b.ids)],
        )
        cls.seller_a_only = new_test_user(
            cls.env,
            login="mc_seller_a",
            groups="sales_team.group_sale_salesman",
            company_id=cls.company_a.id,
            company_ids=[(6, 0, cls.company_a.ids)],
        )
        cls.team_b = cls.env["crm.team"].create(
            {
                "name": "Shop B Team",
                "company_id": cls.company_b.id,
                "member_ids": [(6, 0, (cls.seller_b | cls.seller_a_only).ids)],
            }
        )
        cls.website_b = cls.env["website"].create(
            {
                "name": "Shop B",
                "company_id": cls.company_b.id,
                "salesteam_id": cls.team_b.id,
                "allow_online_returns": True,
                "return_window_days": 30,
            }
        )
        cls.pricelist_b = cls.env["product.pricelist"].create(
            {"name": "Shop B Prices", "currency_id": cls.company_b.currency_id.id}
        )
        # Users of company A who act on company B's orders.
        cls.refunder.write({"company_ids": both, "company_id": cls.company_a.id})
        cls.reason_b = cls.env["sale.return.reason"].search(
            ["|", ("website_id", "=", False), ("website_id", "=", cls.website_b.id)], limit=1
        )

    def _order_b(self, qty=3):
        return self.env["sale.order"].create(
            {
                "partner_id": self.customer.id,
                "company_id": self.company_b.id,
                "website_id": self.website_b.id,
                "warehouse_id": self.warehouse_b.id,
                "pricelist_id": self.pricelist_b.id,
                "team_id": self.team_b.id,
                "user_id": self.seller_b.id,
                "order_line": [(0, 0, {"product_id": self.product.id, "product_uom_qty": qty})],
            }
        )

    def _paid_order_b(self, qty=3):
        self.env["ir.config_parameter"].sudo().set_param("sale.automatic_invoice", "True")
        order = self._order_b(qty)
        self._pay(order, self.acquirer_b)
        self.assertEqual(order.state, "sale")
        self.assertEqual(order._get_posted_invoices().company_id, self.company_b)
        return order

    def _as_manager_in_a(self, records):
        """``records`` as the sales manager working in company A, B allowed."""
        return records.with_user(self.refunder).with_context(
            allowed_company_ids=(self.company_a | self.company_b).ids
        )

    def assertCompanyB(self, records, what):
        self.assertTrue(records, what)
        self.assertEqual(records.company_id, self.company_b, what)

    def test_refund_by_lines_goes_to_the_orders_company(self):
        order = self._paid_order_b()
        refunds = self._engine_refund_lines(self._as_manager_in_a(order), {order.order_line: 1})
        self.assertEqual(refunds.state, "done")
        credit_note = order.invoice_ids.filtered(lambda move: move.move_type == "out_refund")
        self.assertCompanyB(credit_note, "the credit note")
        self.assertCompanyB(credit_note.journal_id, "the credit note's journal")
        self.assertEqual(credit_note.state, "posted")
        self.assertCompanyB(refunds.payment_id, "the refund payment")
        self.assertEqual(refunds.payment_id.journal_id, self.bank_b)

    def test_full_refund_goes_to_the_orders_company(self):
        order = self._paid_order_b()
        self._as_manager_in_a(order).action_refund()
        refund = order.refund_transaction_ids
        self.assertEqual(refund.state, "done")
        credit_notes = order.invoice_ids.filtered(lambda move: move.move_type == "out_refund")
        self.assertCompanyB(credit_notes, "the credit note")
        self.assertCompanyB(refund.payment_id.journal_id, "the refund payment's journal")

    def test_return_picking_and_refund_go_to_the_orders_company(self):
        order = self._paid_order_b()
        self._deliver(order)
        self.assertCompanyB(order.picking_ids, "the delivery")
        request = (
            self.env["sale.return.request"]
            .sudo()
            ._create_from_portal(
                order, {order.order_line.id: {"quantity": 2, "reason": self.reason_b}}
            )
        )
        as_manager = self._as_manager_in_a(request)
        as_manager.action_approve()
        self.assertCompanyB(request.picking_ids, "the return transfer")
        self.assertCompanyB(request.picking_ids.picking_type_id, "the return operation type")
        self._receive(request)
        self.assertEqual(request.state, "received")
        as_manager.action_refund()
        self.assertEqual(request.state, "refunded")
        credit_note = order.invoice_ids.filtered(lambda move: move.move_type == "out_refund")
        self.assertCompanyB(credit_note.journal_id, "the return's credit note journal")
        self.assertEqual(credit_note.invoice_line_ids.quantity, 2)

    def test_abandoned_carts_of_both_companies_are_emailed_from_their_company(self):
        now = fields.Datetime.now()
        for website in (self.website, self.website_b):
            website.write({"send_abandoned_cart_email": True, "cart_abandoned_delay": 1.0})
            website.abandoned_cart_email_start = now - timedelta(days=1)
        cart_a = self._create_web_order()
        cart_b = self._order_b()
        (cart_a | cart_b).write({"cart_last_activity": now - timedelta(hours=3)})
        # The cron runs in company A (its user's company).
        self.env.ref(
            "website_sale_order_handling.ir_cron_send_abandoned_cart_email"
        ).method_direct_trigger()
        for cart in (cart_a, cart_b):
            mails = self.env["mail.mail"].search(
                [
                    ("model", "=", "sale.order"),
                    ("res_id", "=", cart.id),
                    ("is_cart_reminder", "=", True),
                ]
            )
            self.assertEqual(len(mails), 1, cart.website_id.name)
        mail_b = self.env["mail.mail"].search(
            [
                ("model", "=", "sale.order"),
                ("res_id", "=", cart_b.id),
                ("is_cart_reminder", "=", True),
            ]
        )
        self.assertIn("Shop B", mail_b.subject)

    def test_round_robin_takes_only_salespeople_of_the_websites_company(self):
        self.website_b.order_assignment_mode = "round_robin"
        website = self._as_manager_in_a(self.website_b)
        assigned = self.env["res.users"]
        for _turn in range(4):
            with MockRequest(website.env, website=website):
                values = website._prepare_sale_order_values(self.customer, self.pricelist_b)
            self.assertFalse(values["user_id"], "a cart waits for its order to be placed")
            values["website_id"] = website.id
            order = self.env["sale.order"].create(values)
            order.with_context(tracking_disable=True).write({"state": "sent"})
            assigned |= order.user_id
        self.assertEqual(
            assigned, self.seller_b, "a salesperson who cannot work in company B gets no turn"
        )
