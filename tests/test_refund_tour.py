"""The Refund button and its wizard, clicked in a real browser by a sales manager."""

from flectra.tests import new_test_user, tagged

from .common import OrderHandlingHttpCase


@tagged("post_install", "-at_install")
class TestRefundTour(OrderHandlingHttpCase):
    def setUp(self):
        super().setUp()
        env = self.env
        new_test_user(
            env,
            login="refund_tour_manager",
            password="refund_tour_manager",
            groups="sales_team.group_sale_manager",
        )
        self.acquirer = env.ref("payment_test.payment_acquirer_test")
        if not self.acquirer.journal_id:
            self.acquirer.journal_id = env["account.journal"].search(
                [("type", "=", "bank"), ("company_id", "=", self.acquirer.company_id.id)],
                limit=1,
            )
        self.partner = env["res.partner"].create(
            {"name": "Tour Refund Customer", "email": "tour.refund@example.com"}
        )

    def _paid_order(self, lines):
        env = self.env
        order = env["sale.order"].create(
            {
                "partner_id": self.partner.id,
                "website_id": env["website"].browse(1).id,
                "order_line": [
                    (
                        0,
                        0,
                        {
                            "product_id": env["product.product"]
                            .create(
                                {
                                    "name": name,
                                    "list_price": price,
                                    "taxes_id": [(6, 0, [])],
                                }
                            )
                            .id,
                            "product_uom_qty": qty,
                        },
                    )
                    for name, price, qty in lines
                ],
            }
        )
        tx = order._create_payment_transaction({"acquirer_id": self.acquirer.id})
        tx._post_process_after_done()
        self.assertEqual(order.state, "sale")
        return order, tx

    def _start(self, order, tour):
        self.start_tour(
            "/web#id=%d&model=sale.order&view_type=form" % order.id,
            tour,
            login="refund_tour_manager",
        )

    def test_sales_manager_refunds_a_paid_order_from_its_form(self):
        order, tx = self._paid_order([("Tour Refund Teapot", 30.0, 1)])
        self._start(order, "wsoh_order_refund")
        refund = tx.refund_transaction_ids
        self.assertEqual(refund.state, "done")
        self.assertEqual(refund.amount, -order.amount_total)
        self.assertIn("Customer cancelled by phone", "".join(order.message_ids.mapped("body")))

    def test_sales_manager_refunds_chosen_quantities_with_the_wizard(self):
        order, tx = self._paid_order(
            [("Wizard Tour Teapot", 30.0, 2), ("Wizard Tour Cup", 10.0, 1)]
        )
        self._start(order, "wsoh_order_refund_wizard")
        refund = tx.refund_transaction_ids
        self.assertEqual(refund.state, "done")
        self.assertEqual(refund.amount, -30.0)
        self.assertEqual(order.online_refundable_amount, 40.0)
        note = order.message_ids.filtered(lambda m: "One teapot arrived broken" in (m.body or ""))
        self.assertEqual(note.subtype_id, self.env.ref("mail.mt_note"), "an internal note")
        self.assertFalse(note.partner_ids, "the reason is never sent to the customer")
