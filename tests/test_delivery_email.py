"""Inventory's "Email Confirmation picking", narrowed to customer deliveries."""

import threading
from unittest.mock import patch

from flectra.tests import Form, tagged

from .common import OrderHandlingCase


class DeliveryEmailCase(OrderHandlingCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company.stock_move_email_validation = True
        cls.shipping = cls.env["res.partner"].create(
            {
                "name": "Front Desk",
                "type": "delivery",
                "parent_id": cls.customer.id,
                "email": "frontdesk@example.com",
            }
        )
        cls.vendor = cls.env["res.partner"].create(
            {"name": "Lamp Vendor", "email": "v@example.com"}
        )

    def _delivery_emails(self, picking):
        return self.env["mail.message"].search(
            [
                ("model", "=", "stock.picking"),
                ("res_id", "=", picking.id),
                ("message_type", "=", "comment"),
                ("subject", "ilike", "Delivery Order"),
            ]
        )

    def _validate(self, picking, qty=None):
        """Validate as a user does; a partial quantity creates a backorder."""
        for move in picking.move_lines:
            move.quantity_done = move.product_uom_qty if qty is None else qty
        result = picking.button_validate()
        if isinstance(result, dict) and result.get("res_model") == "stock.backorder.confirmation":
            Form(self.env[result["res_model"]].with_context(**result["context"])).save().process()
        return picking

    def _confirmed_web_order(self, qty=2):
        order = self._create_web_order(
            lines=[(self.product, qty)], partner_shipping_id=self.shipping.id
        )
        order.action_confirm()
        return order


@tagged("post_install", "-at_install")
class TestDeliveryEmail(DeliveryEmailCase):
    def test_done_delivery_emails_the_orders_customer_once(self):
        order = self._confirmed_web_order()
        picking = self._validate(order.picking_ids)
        emails = self._delivery_emails(picking)
        self.assertEqual(len(emails), 1)
        self.assertEqual(
            emails.partner_ids, self.customer, "the customer, not the delivery contact"
        )
        picking._send_confirmation_email()
        self.assertEqual(len(self._delivery_emails(picking)), 1, "never twice for one delivery")

    def test_backorder_gets_its_own_single_email(self):
        order = self._confirmed_web_order(qty=3)
        first = self._validate(order.picking_ids, qty=1)
        backorder = order.picking_ids - first
        self.assertEqual(len(backorder), 1)
        self.assertFalse(backorder.delivery_email_sent, "a backorder is a new delivery")
        self._validate(backorder)
        self.assertEqual(len(self._delivery_emails(first)), 1)
        self.assertEqual(len(self._delivery_emails(backorder)), 1)

    def test_setting_off_sends_nothing(self):
        self.company.stock_move_email_validation = False
        order = self._confirmed_web_order()
        picking = self._validate(order.picking_ids)
        self.assertFalse(self._delivery_emails(picking))
        self.assertFalse(picking.delivery_email_sent)

    def test_customer_return_sends_nothing(self):
        order = self._confirmed_web_order()
        delivery = self._validate(order.picking_ids)
        wizard = Form(
            self.env["stock.return.picking"].with_context(
                active_id=delivery.id, active_model="stock.picking"
            )
        ).save()
        returned = self.env["stock.picking"].browse(wizard.create_returns()["res_id"])
        self._validate(returned)
        self.assertEqual(returned.location_dest_id.usage, "internal")
        self.assertFalse(self._delivery_emails(returned))

    def test_vendor_return_and_internal_transfer_send_nothing(self):
        stock = self.warehouse.lot_stock_id
        out_type = self.warehouse.out_type_id
        vendor_return = self.env["stock.picking"].create(
            {
                "partner_id": self.vendor.id,
                "picking_type_id": out_type.id,
                "location_id": stock.id,
                "location_dest_id": self.env.ref("stock.stock_location_suppliers").id,
                "move_lines": [
                    (
                        0,
                        0,
                        {
                            "name": "return",
                            "product_id": self.product.id,
                            "product_uom_qty": 1,
                            "product_uom": self.product.uom_id.id,
                            "location_id": stock.id,
                            "location_dest_id": self.env.ref("stock.stock_location_suppliers").id,
                        },
                    )
                ],
            }
        )
        vendor_return.action_confirm()
        vendor_return.action_assign()
        self._validate(vendor_return)
        self.assertEqual(vendor_return.state, "done")
        self.assertFalse(self._delivery_emails(vendor_return))

        shelf = self.env["stock.location"].create({"name": "Shelf 2", "location_id": stock.id})
        internal = self.env["stock.picking"].create(
            {
                "picking_type_id": self.warehouse.int_type_id.id,
                "location_id": stock.id,
                "location_dest_id": shelf.id,
                "move_lines": [
                    (
                        0,
                        0,
                        {
                            "name": "move",
                            "product_id": self.product.id,
                            "product_uom_qty": 1,
                            "product_uom": self.product.uom_id.id,
                            "location_id": stock.id,
                            "location_dest_id": shelf.id,
                        },
                    )
                ],
            }
        )
        internal.action_confirm()
        internal.action_assign()
        self._validate(internal)
        self.assertFalse(self._delivery_emails(internal))


@tagged("post_install", "-at_install")
class TestDeliveryBesideOtherAddons(DeliveryEmailCase):
    """Validating a web order's delivery still runs what carriers (delivery)
    and SMS (stock_sms) add to it: the e-mail is the only thing we change."""

    def test_real_cost_carrier_ships_and_adds_its_line_to_the_order(self):
        carrier_product = self.env["product.product"].create(
            {
                "name": "Test Courier Service",
                "type": "service",
                "list_price": 0.0,
                "taxes_id": [(6, 0, [])],
            }
        )
        carrier = self.env["delivery.carrier"].create(
            {
                "name": "Test Courier",
                "delivery_type": "fixed",
                "fixed_price": 7.5,
                "integration_level": "rate_and_ship",
                "invoice_policy": "real",
                "product_id": carrier_product.id,
            }
        )
        order = self._confirmed_web_order()
        picking = order.picking_ids
        picking.carrier_id = carrier
        self._validate(picking)
        self.assertEqual(picking.state, "done")
        self.assertEqual(picking.carrier_price, 7.5, "send_to_shipper() ran")
        delivery_line = order.order_line.filtered("is_delivery")
        self.assertEqual(delivery_line.product_id, carrier_product)
        self.assertEqual(delivery_line.price_unit, 7.5)
        self.assertEqual(
            len(self._delivery_emails(picking)), 1, "and the customer is e-mailed once"
        )

    def test_sms_leaves_even_with_the_email_setting_off(self):
        self.company.stock_move_email_validation = False
        self.company.stock_move_sms_validation = True
        self.shipping.mobile = "+32 470 12 34 56"
        order = self._create_web_order(lines=[(self.product, 1)])
        order.action_confirm()
        picking = self._validate(order.picking_ids)
        # stock_sms sends nothing in test mode: lift that for this call only,
        # and catch the SMS instead of sending it.
        texted = []
        Picking = type(self.env["stock.picking"])
        with (
            patch.object(threading.current_thread(), "testing", False),
            patch.object(self.env.registry, "in_test_mode", return_value=False),
            patch.object(
                Picking,
                "_message_sms_with_template",
                lambda picking, **kwargs: texted.append(picking.id),
            ),
        ):
            picking._send_confirmation_email()
        self.assertEqual(texted, [picking.id])
        self.assertFalse(self._delivery_emails(picking))
