"""Return requests: creation rules, the backend workflow and its emails."""

from datetime import timedelta
from unittest.mock import patch

from flectra import fields, sql_db
from flectra.exceptions import AccessError, UserError, ValidationError
from flectra.tests import Form, new_test_user, tagged

from .return_common import ReturnCase


@tagged("post_install", "-at_install")
class TestReturnRequestCreation(ReturnCase):
    def test_form_submission_creates_a_requested_request(self):
        order = self._delivered_order()
        request = self._submit(
            order, {self.product: 2}, comment="Broken box", phone="0470 12 34 56"
        )
        self.assertEqual(request.state, "requested")
        self.assertTrue(request.name.startswith("RET/"))
        self.assertEqual(request.partner_id, self.customer)
        self.assertEqual(request.line_ids.quantity, 2)
        self.assertEqual(request.phone, "+32 470 12 34 56")
        self.assertEqual(order.return_request_count, 1)

    def test_order_writes_look_no_request_up(self):
        """A request takes its order's company, website and currency, and its
        lines their order line's product and unit, when it is created; so
        writing an order or its lines (each add to cart, the pricelist at
        checkout) never looks return requests up (issue 20)."""
        order = self._delivered_order()
        request = self._submit(order, {self.product: 2})
        sale_line = order.order_line.filtered(lambda ln: ln.product_id == self.product)
        self.assertEqual(request.company_id, order.company_id)
        self.assertEqual(request.website_id, order.website_id)
        self.assertEqual(request.currency_id, order.currency_id)
        self.assertEqual(request.line_ids.product_id, self.product)
        self.assertEqual(request.line_ids.product_uom, sale_line.product_uom)
        self.assertEqual(request.line_ids.company_id, order.company_id)
        cart = self._create_web_order()
        self.env["base"].flush()
        queries = []
        execute = sql_db.Cursor.execute

        def logged(cursor, query, params=None, log_exceptions=None):
            queries.append(str(query))
            return execute(cursor, query, params, log_exceptions)

        with patch.object(sql_db.Cursor, "execute", logged):
            cart.order_line.write(
                {
                    "product_id": self.product.id,
                    "product_uom": self.product.uom_id.id,
                    "product_uom_qty": 3,
                }
            )
            cart.write({"pricelist_id": cart.pricelist_id.id})
            self.env["base"].flush()
        self.assertTrue(queries)
        self.assertFalse([q for q in queries if "sale_return_request" in q])

    def test_backend_create_is_refused(self):
        order = self._delivered_order()
        with self.assertRaises(AccessError):
            self.Request.create({"order_id": order.id, "partner_id": self.customer.id})

    def test_salesman_has_no_create_right(self):
        salesman = new_test_user(
            self.env, "returns_salesman", groups="sales_team.group_sale_salesman"
        )
        self.assertFalse(
            self.Request.with_user(salesman).check_access_rights("create", raise_exception=False)
        )
        self.assertTrue(
            self.Request.with_user(salesman).check_access_rights("write", raise_exception=False)
        )

    def _assert_refused(self, order, quantities, message, **kwargs):
        with self.assertRaisesRegex(UserError, message):
            self._submit(order, quantities, **kwargs)
        self.assertFalse(order.return_request_ids)

    def test_negative_quantity_is_refused(self):
        self._assert_refused(self._delivered_order(), {self.product: -1}, "positive number")

    def test_zero_on_every_line_is_refused(self):
        self._assert_refused(self._delivered_order(), {self.product: 0}, "at least one product")

    def test_quantity_above_returnable_is_refused(self):
        self._assert_refused(self._delivered_order(), {self.product: 6}, "at most 5")

    def test_huge_quantity_is_refused(self):
        self._assert_refused(self._delivered_order(), {self.product: 1e300}, "at most 5")

    def test_line_of_another_order_is_refused(self):
        order = self._delivered_order()
        other = self._delivered_order()
        values = {"quantity": 1, "reason": self.reason}
        with self.assertRaisesRegex(ValidationError, "does not belong"):
            self.Request.sudo()._create_from_portal(order, {other.order_line.id: values})
        with self.assertRaisesRegex(ValidationError, "does not belong"):
            self.Request.sudo()._create_from_portal(order, {987654321: values})
        self.assertFalse((order | other).return_request_ids)

    def test_comment_over_the_limit_is_refused(self):
        self._assert_refused(
            self._delivered_order(), {self.product: 1}, "too long", comment="x" * 1001
        )

    def test_invalid_phone_is_refused(self):
        self._assert_refused(self._delivered_order(), {self.product: 1}, "not valid", phone="12ab")

    def test_expired_window_is_refused(self):
        order = self._delivered_order()
        order.picking_ids.move_lines.write({"date": fields.Datetime.now() - timedelta(days=31)})
        self._assert_refused(order, {self.product: 1}, "return period has ended")

    def test_not_returnable_product_is_refused(self):
        self.product.return_policy = "not_returnable"
        self._assert_refused(self._delivered_order(), {self.product: 1}, "cannot be returned")

    def test_shop_without_online_returns_refuses(self):
        order = self._delivered_order()
        self.website.allow_online_returns = False
        self._assert_refused(order, {self.product: 1}, "does not accept online returns")

    def test_same_form_submitted_twice_creates_one_request(self):
        order = self._delivered_order()
        token = "b" * 32
        first = self._submit(order, {self.product: 1}, token=token)
        second = self._submit(order, {self.product: 1}, token=token)
        self.assertEqual(first, second)
        self.assertEqual(len(order.return_request_ids), 1)

    def test_too_many_requests_per_hour_are_refused(self):
        order = self._delivered_order(lines=[(self.product, 10)])
        self.env["ir.config_parameter"].sudo().set_param(
            "website_sale_order_handling.return_max_requests_per_hour", 2
        )
        self._submit(order, {self.product: 1}, token="1" * 32)
        self._submit(order, {self.product: 1}, token="2" * 32)
        with self.assertRaisesRegex(UserError, "Too many return requests"):
            self._submit(order, {self.product: 1}, token="3" * 32)
        self.assertEqual(len(order.return_request_ids), 2)


@tagged("post_install", "-at_install")
class TestReturnRequestWorkflow(ReturnCase):
    def test_approve_creates_the_return_picking_from_the_delivery(self):
        order = self._delivered_order()
        delivery = order.picking_ids
        request = self._submit(order, {self.product: 2})
        request.action_approve()
        self.assertEqual(request.state, "approved")
        self.assertEqual(len(request.picking_ids), 1)
        move = request.picking_ids.move_lines
        self.assertEqual(move.product_uom_qty, 2)
        self.assertEqual(move.origin_returned_move_id, delivery.move_lines)
        self.assertTrue(move.to_refund)
        self.assertEqual(request.picking_ids.location_id, delivery.location_dest_id)

    def test_return_of_a_line_delivered_in_two_parts_uses_both_deliveries(self):
        order = self._create_web_order(lines=[(self.product, 5)])
        order.action_confirm()
        self._deliver(order, {self.product: 2})
        self._deliver(order)
        request = self._submit(order, {self.product: 4})
        request.action_approve()
        self.assertEqual(len(request.picking_ids), 2)
        self.assertEqual(sum(request.picking_ids.move_lines.mapped("product_uom_qty")), 4)

    def test_validating_the_return_picking_marks_the_request_received(self):
        order = self._delivered_order()
        request = self._submit(order, {self.product: 2})
        request.action_approve()
        self._receive(request)
        self.assertEqual(request.state, "received")
        self.assertEqual(request.line_ids.quantity_received, 2)
        self.assertEqual(order.order_line.qty_delivered, 3)

    def test_partial_receipt_waits_for_the_backorder(self):
        order = self._delivered_order()
        request = self._submit(order, {self.product: 3})
        request.action_approve()
        self._receive(request, {self.product: 1})
        self.assertEqual(request.state, "approved")
        self.assertTrue(request.is_partially_received)
        self.assertEqual(request.line_ids.quantity_received, 1)
        self._receive(request)
        self.assertEqual(request.state, "received")
        self.assertEqual(request.line_ids.quantity_received, 3)

    def test_partial_receipt_without_backorder_is_received_with_what_came_back(self):
        order = self._delivered_order()
        request = self._submit(order, {self.product: 3})
        request.action_approve()
        self._receive(request, {self.product: 1}, backorder=False)
        self.assertEqual(request.state, "received")
        self.assertEqual(request.line_ids.quantity_received, 1)

    def test_reject_requires_a_reason(self):
        request = self._submit(self._delivered_order(), {self.product: 1})
        with self.assertRaises(UserError):
            request.action_reject("  ")
        wizard = Form(
            self.env["sale.return.request.reject"].with_context(default_request_id=request.id)
        )
        wizard.reason = "Bought more than a year ago"
        wizard.save().action_reject()
        self.assertEqual(request.state, "rejected")
        self.assertEqual(request.reject_reason, "Bought more than a year ago")

    def test_rejecting_an_approved_request_cancels_its_return_picking(self):
        request = self._submit(self._delivered_order(), {self.product: 1})
        request.action_approve()
        request.action_reject("Not eligible after all")
        self.assertEqual(request.picking_ids.state, "cancel")

    def test_cancel_is_refused_once_products_came_back(self):
        request = self._submit(self._delivered_order(), {self.product: 2})
        request.action_approve()
        self._receive(request)
        with self.assertRaises(UserError):
            request.action_cancel()

    def test_approve_twice_is_refused(self):
        request = self._submit(self._delivered_order(), {self.product: 1})
        request.action_approve()
        with self.assertRaises(UserError):
            request.action_approve()
        self.assertEqual(len(request.picking_ids), 1)

    def test_refund_amount_is_the_received_quantity_taxes_included(self):
        tax = self.env["account.tax"].create(
            {"name": "VAT 21", "amount": 21, "amount_type": "percent", "type_tax_use": "sale"}
        )
        self.product.taxes_id = tax
        order = self._create_web_order(lines=[(self.product, 4)])
        # Set the price on the line: the website pricelist may convert the list price.
        order.order_line.write({"price_unit": 50.0, "discount": 10})
        order.action_confirm()
        self._deliver(order)
        request = self._submit(order, {self.product: 3})
        request.action_approve()
        self._receive(request, {self.product: 2}, backorder=False)
        # 2 × 50 × 0.9 = 90 untaxed, + 21 %.
        self.assertAlmostEqual(request._get_refund_amount(), 108.9)
        self.assertAlmostEqual(request.refund_amount, 108.9)


@tagged("post_install", "-at_install")
class TestReturnRequestEmails(ReturnCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Chatter and emails are the subject here.
        cls.env = cls.env(context=dict(cls.env.context, tracking_disable=False))

    def _customer_messages(self, request):
        return request.message_ids.filtered(lambda m: self.customer in m.partner_ids)

    def _assert_emailed(self, request, subject_part):
        message = self._customer_messages(request)[:1]
        self.assertIn(subject_part, message.subject)
        notification = message.notification_ids.filtered(
            lambda n: n.res_partner_id == self.customer
        )
        self.assertEqual(notification.notification_type, "email")

    def test_every_state_change_emails_the_customer(self):
        order = self._delivered_order()
        request = self._submit(order, {self.product: 2})
        self._assert_emailed(request, "received")
        request.action_approve()
        self._assert_emailed(request, "approved")
        self._receive(request)
        self._assert_emailed(request, "products received")
        self.assertEqual(len(self._customer_messages(request)), 3)

    def test_rejection_email_carries_the_reason(self):
        request = self._submit(self._delivered_order(), {self.product: 1})
        request.action_reject("Seal broken")
        self._assert_emailed(request, "rejected")
        self.assertIn("Seal broken", self._customer_messages(request)[:1].body)

    def test_cancellation_emails_the_customer(self):
        request = self._submit(self._delivered_order(), {self.product: 1})
        request.action_cancel()
        self._assert_emailed(request, "cancelled")
