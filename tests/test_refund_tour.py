"""The Refund button, clicked in a real browser by a sales manager."""
from flectra.tests import new_test_user, tagged

from .common import OrderHandlingHttpCase


@tagged("post_install", "-at_install")
class TestRefundTour(OrderHandlingHttpCase):
    def test_sales_manager_refunds_a_paid_order_from_its_form(self):
        env = self.env
        new_test_user(
            env, login="refund_tour_manager", password="refund_tour_manager",
            groups="sales_team.group_sale_manager",
        )
        acquirer = env.ref("payment_test.payment_acquirer_test")
        if not acquirer.journal_id:
            acquirer.journal_id = env["account.journal"].search(
                [("type", "=", "bank"), ("company_id", "=", acquirer.company_id.id)], limit=1
            )
        product = env["product.product"].create(
            {"name": "Tour Refund Teapot", "list_price": 30.0, "taxes_id": [(6, 0, [])]}
        )
        partner = env["res.partner"].create(
            {"name": "Tour Refund Customer", "email": "tour.refund@example.com"}
        )
        order = env["sale.order"].create({
            "partner_id": partner.id,
            "website_id": env["website"].browse(1).id,
            "order_line": [(0, 0, {"product_id": product.id, "product_uom_qty": 1})],
        })
        tx = order._create_payment_transaction({"acquirer_id": acquirer.id})
        tx._post_process_after_done()
        self.assertEqual(order.state, "sale")

        self.start_tour(
            "/web#id=%d&model=sale.order&view_type=form" % order.id,
            "wsoh_order_refund", login="refund_tour_manager",
        )

        refund = tx.refund_transaction_ids
        self.assertEqual(refund.state, "done")
        self.assertEqual(refund.amount, -order.amount_total)
