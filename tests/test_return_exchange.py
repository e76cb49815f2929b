"""Exchanges: a returned product swapped for another size or colour of it."""

from flectra.exceptions import AccessError, UserError, ValidationError
from flectra.tests import tagged

from .common import OrderHandlingHttpCase
from .refund_common import RefundCase
from .return_common import ReturnHttpMixin, ReturnMixin


class ExchangeMixin(ReturnMixin):
    @classmethod
    def _setup_shirt(cls, env, warehouse, name="Test Shirt"):
        """A published shirt in S (40), M (50), L (60) and XL (50, none in stock).
        Returns {size: variant}; 10 of each but XL are in stock."""
        attribute = env["product.attribute"].create(
            {
                "name": "Test Shirt Size",
                "value_ids": [(0, 0, {"name": size}) for size in ("S", "M", "L", "XL")],
            }
        )
        template = env["product.template"].create(
            {
                "name": name,
                "type": "product",
                "list_price": 50.0,
                "is_published": True,
                "invoice_policy": "order",
                "taxes_id": [(6, 0, [])],
                "attribute_line_ids": [
                    (
                        0,
                        0,
                        {
                            "attribute_id": attribute.id,
                            "value_ids": [(6, 0, attribute.value_ids.ids)],
                        },
                    )
                ],
            }
        )
        extras = {"S": -10.0, "L": 10.0}
        for value in template.attribute_line_ids.product_template_value_ids:
            value.price_extra = extras.get(value.name, 0.0)
        sizes = {
            variant.product_template_attribute_value_ids.name: variant
            for variant in template.product_variant_ids
        }
        for size in ("S", "M", "L"):
            env["stock.quant"]._update_available_quantity(sizes[size], warehouse.lot_stock_id, 10.0)
        return sizes


@tagged("post_install", "-at_install")
class TestReturnExchange(ExchangeMixin, RefundCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._setup_return_policy()
        cls.sizes = cls._setup_shirt(cls.env, cls.warehouse)
        cls.Exchange = cls.env["sale.return.exchange"]

    def _delivered_shirts(self, size="M", qty=2):
        order, tx = self._paid_order(lines=[(self.sizes[size], qty)])
        self._deliver(order)
        return order, tx

    def _exchange(self, order, size, qty=1, returned="M"):
        return self._submit(
            order,
            {
                self.sizes[returned]: {
                    "quantity": qty,
                    "reason": self.reason,
                    "exchange": self.sizes[size],
                }
            },
        )

    def _ledger(self, order, **filters):
        ledger = order.sudo().refund_ledger_ids
        for field, value in filters.items():
            ledger = ledger.filtered(lambda entry, f=field, v=value: entry[f] == v)
        return ledger

    # --- 1. Offer -----------------------------------------------------------------

    def test_form_offers_other_sizes_in_stock_at_the_price_or_lower(self):
        order, _tx = self._delivered_shirts("M")
        line = order.order_line
        self.assertAlmostEqual(line.price_unit, 50.0)
        options = self.Exchange._get_options(order.order_line)[line.id]
        offered = {option["product"]: option for option in options["variants"]}
        # L costs more: named, not offered; XL has no stock: not offered at all.
        self.assertEqual(set(offered), {self.sizes["S"]})
        self.assertEqual(options["dearer"], self.sizes["L"])
        self.assertAlmostEqual(offered[self.sizes["S"]]["difference"], 10.0)

    def test_same_price_variant_is_offered_with_no_difference(self):
        self.env["stock.quant"]._update_available_quantity(
            self.sizes["XL"], self.warehouse.lot_stock_id, 5.0
        )
        order, _tx = self._delivered_shirts("M")
        options = self.Exchange._get_options(order.order_line)[order.order_line.id]
        offered = {option["product"]: option["difference"] for option in options["variants"]}
        self.assertEqual(set(offered), {self.sizes["S"], self.sizes["XL"]})
        self.assertAlmostEqual(offered[self.sizes["XL"]], 0.0)

    def test_unpublished_or_archived_variants_are_not_offered(self):
        order, _tx = self._delivered_shirts("M")
        self.sizes["S"].active = False
        self.assertFalse(
            self.Exchange._get_options(order.order_line)
            .get(order.order_line.id, {})
            .get("variants")
        )
        self.sizes["S"].active = True
        self.sizes["S"].product_tmpl_id.is_published = False
        self.assertFalse(self.Exchange._get_options(order.order_line))

    def test_product_without_variants_offers_nothing(self):
        order, _tx = self._paid_order(lines=[(self.product, 1)])
        self._deliver(order)
        self.assertEqual(self.Exchange._get_options(order.order_line), {})

    # --- 2. The customer's choice -------------------------------------------------

    def test_submitted_exchange_keeps_the_variant_and_the_difference(self):
        order, _tx = self._delivered_shirts("M")
        request = self._exchange(order, "S", qty=2)
        line = request.line_ids
        self.assertEqual(line.resolution, "exchange")
        self.assertEqual(line.exchange_product_id, self.sizes["S"])
        self.assertAlmostEqual(line.exchange_price_unit, 40.0)
        self.assertAlmostEqual(line.exchange_difference, 20.0)
        self.assertTrue(request.has_exchange)

    def test_bad_exchanges_are_refused_and_create_nothing(self):
        order, _tx = self._delivered_shirts("M")
        other = self.env["product.product"].create(
            {"name": "Test Other Product", "type": "consu", "is_published": True, "list_price": 1.0}
        )
        cases = {
            "another product": (other, "another size or colour of the same product"),
            "the same variant": (self.sizes["M"], "another size or colour of the same product"),
            "a dearer variant": (self.sizes["L"], "costs more, so it cannot"),
            "an out-of-stock variant": (self.sizes["XL"], "not available in that quantity"),
            "a deleted variant": (self.env["product.product"], "another size or colour"),
            "no record": ("12", "could not be read"),
        }
        for case, (variant, message) in cases.items():
            with self.subTest(case), self.assertRaises(ValidationError) as caught:
                self._submit(
                    order,
                    {self.sizes["M"]: {"quantity": 1, "reason": self.reason, "exchange": variant}},
                )
            self.assertIn(message, caught.exception.args[0])
        self.assertFalse(self.Request.search([("order_id", "=", order.id)]))

    def test_more_than_in_stock_is_refused(self):
        order, _tx = self._delivered_shirts("M", qty=12)
        with self.assertRaisesRegex(ValidationError, "not available in that quantity"):
            self._exchange(order, "S", qty=11)

    def test_exchange_fields_are_not_written_by_salespeople(self):
        order, _tx = self._delivered_shirts("M")
        request = self._exchange(order, "S")
        with self.assertRaises(AccessError):
            request.line_ids.with_user(self.salesman).sudo().write({"exchange_difference": 500.0})

    # --- 3. Reserve on approval ----------------------------------------------------

    def test_approval_reserves_the_variant_on_a_new_delivery_to_the_same_address(self):
        order, _tx = self._delivered_shirts("M")
        deliveries = order.picking_ids
        request = self._exchange(order, "S")
        request.action_approve()
        self.assertEqual(request.state, "approved")
        delivery = request.exchange_picking_ids
        self.assertEqual(len(delivery), 1)
        self.assertNotIn(delivery, deliveries)
        self.assertNotIn(delivery, order.picking_ids, "sale_stock would add the variant as a line")
        self.assertEqual(delivery.picking_type_code, "outgoing")
        self.assertEqual(delivery.partner_id, order.partner_shipping_id)
        self.assertEqual(delivery.state, "assigned")
        self.assertEqual(delivery.move_lines.product_id, self.sizes["S"])
        self.assertEqual(delivery.move_lines.product_uom_qty, 1.0)
        # The returned M comes back on a return transfer, as for a refund.
        self.assertEqual(request.picking_ids.move_lines.product_id, self.sizes["M"])
        self.assertEqual(self.sizes["S"].with_context(warehouse=self.warehouse.id).free_qty, 9.0)

    def test_approval_fitted_to_what_is_left_scales_the_difference(self):
        order, _tx = self._delivered_shirts("M", qty=2)
        request = self._exchange(order, "S", qty=2)
        self.assertAlmostEqual(request.line_ids.exchange_difference, 20.0)
        # One of the two shirts is refunded in the Refund window meanwhile.
        self._engine_refund_lines(order, {order.order_line: 1.0})
        request.action_approve()
        self.assertEqual(request.line_ids.quantity, 1.0)
        self.assertAlmostEqual(request.line_ids.exchange_difference, 10.0)
        self.assertEqual(request.exchange_picking_ids.move_lines.product_uom_qty, 1.0)

    def test_two_step_delivery_reserves_the_pick_and_ships_from_output(self):
        self.warehouse.delivery_steps = "pick_ship"
        order, _tx = self._delivered_shirts("M")
        request = self._exchange(order, "S")
        request.action_approve()
        pickings = request.exchange_picking_ids
        pick = pickings.filtered(lambda p: p.picking_type_id == self.warehouse.pick_type_id)
        ship = pickings.filtered(lambda p: p.picking_type_code == "outgoing")
        self.assertEqual(pick.state, "assigned", "the variant is reserved in stock")
        self.assertEqual(ship.state, "waiting")
        self.assertEqual(ship.partner_id, order.partner_shipping_id)
        # The warehouse picked it; the request may still be rejected.
        pick.move_lines.quantity_done = 1.0
        pick._action_done()
        request.action_reject("Not sent back")
        self.assertEqual(ship.state, "cancel")
        self.assertFalse(self._ledger(order, kind="exchange"))

    def test_ledger_counts_exchanged_units_so_no_door_refunds_them(self):
        order, _tx = self._delivered_shirts("M", qty=2)
        request = self._exchange(order, "S")
        request.action_approve()
        units = self._ledger(order, kind="exchange")
        self.assertEqual(units.quantity, 1.0)
        self.assertFalse(units.refund_id)
        left = self.env["sale.order.refund.line"]._get_left_quantities(order)
        self.assertEqual(left[order.order_line], 1.0)
        # What the order's doors may refund: the shirt not exchanged (50);
        # the exchange's difference (10) is the request's to refund.
        self.assertAlmostEqual(order._get_online_refundable_amount(), 50.0)
        with self.assertRaises(UserError):
            self._engine_refund_lines(order, {order.order_line: 2.0})
        with self.assertRaisesRegex(UserError, "took in exchange"):
            self._engine_refund(order.with_user(self.refunder), amount=60.0)

    def test_full_refund_before_the_return_arrives_leaves_the_difference_to_the_request(self):
        order, tx = self._delivered_shirts("M", qty=2)
        request = self._exchange(order, "S")
        request.action_approve()
        self._engine_refund(order.with_user(self.refunder))
        self.assertAlmostEqual(sum(tx.refund_transaction_ids.mapped("amount")), -50.0)
        self._receive(request)
        request.with_user(self.refunder).action_refund()
        # 50 for the shirt kept back, 10 of difference: the S cost 40.
        self.assertAlmostEqual(sum(tx.refund_transaction_ids.mapped("amount")), -60.0)
        self.assertAlmostEqual(order._get_online_refundable_amount(), 0.0)
        with self.assertRaises(UserError):
            self._engine_refund(order.with_user(self.refunder), amount=1.0)

    def test_partial_receipt_exchanges_only_what_came_back(self):
        order, tx = self._delivered_shirts("M", qty=2)
        request = self._exchange(order, "S", qty=2)
        request.action_approve()
        self._receive(request, {self.sizes["M"]: 1.0}, backorder=False)
        self.assertEqual(request.state, "received")
        self.assertEqual(self._ledger(order, kind="exchange").quantity, 1.0)
        delivery = request.exchange_picking_ids
        self.assertEqual(delivery.move_lines.product_uom_qty, 1.0)
        self.assertEqual(delivery.state, "assigned")
        self.assertAlmostEqual(request.refund_amount, 10.0)
        request.with_user(self.refunder).action_refund()
        self.assertAlmostEqual(sum(tx.refund_transaction_ids.mapped("amount")), -10.0)
        # The M the customer kept is neither exchanged nor refunded: it stays paid.
        self.assertAlmostEqual(order._get_online_refundable_amount(), 50.0)

    def test_unreservable_variant_stops_approval_and_refund_instead_turns_it(self):
        order, _tx = self._delivered_shirts("M")
        request = self._exchange(order, "S")
        # Someone else took the last S meanwhile.
        quant = self.env["stock.quant"].search(
            [
                ("product_id", "=", self.sizes["S"].id),
                ("location_id", "=", self.warehouse.lot_stock_id.id),
            ]
        )
        quant.sudo().write({"quantity": 0.0})
        with self.assertRaisesRegex(UserError, "can no longer be reserved"):
            request.with_user(self.salesman).action_approve()
        self.assertEqual(request.state, "requested")
        request.line_ids.with_user(self.salesman).action_refund_instead()
        self.assertEqual(request.line_ids.resolution, "refund")
        self.assertTrue(request.line_ids.exchange_refused)
        request.with_user(self.salesman).action_approve()
        self.assertEqual(request.state, "approved")
        self.assertFalse(request.exchange_picking_ids)
        self.assertFalse(self._ledger(order, kind="exchange"))
        approval = request.message_ids.filtered(lambda m: "approved" in (m.subject or ""))
        self.assertIn("could not be reserved", approval.body)

    # --- 4. Ship -------------------------------------------------------------------

    def test_exchange_ships_once_the_return_is_received_by_default(self):
        order, _tx = self._delivered_shirts("M")
        request = self._exchange(order, "S")
        request.action_approve()
        delivery = request.exchange_picking_ids
        delivery.move_lines.quantity_done = 1.0
        with self.assertRaisesRegex(UserError, "ships once the products returned"):
            delivery._action_done()
        self._receive(request)
        delivery._action_done()
        self.assertEqual(delivery.state, "done")

    def test_website_may_ship_exchanges_at_once(self):
        self.website.return_exchange_shipping = "approval"
        order, _tx = self._delivered_shirts("M")
        request = self._exchange(order, "S")
        request.action_approve()
        delivery = request.exchange_picking_ids
        lines = order.order_line
        delivery.move_lines.quantity_done = 1.0
        delivery._action_done()
        self.assertEqual(delivery.state, "done")
        self.assertEqual(order.order_line, lines, "the variant is no new line of the order")

    # --- 5. Refund the difference ------------------------------------------------------

    def test_received_exchange_refunds_only_the_difference(self):
        order, tx = self._delivered_shirts("M", qty=2)
        request = self._exchange(order, "S", qty=2)
        request.action_approve()
        self._receive(request)
        self.assertEqual(request.state, "received")
        self.assertAlmostEqual(request.refund_amount, 20.0)
        request.with_user(self.refunder).action_refund()
        self.assertEqual(request.state, "refunded")
        refund = request.refund_transaction_ids
        self.assertAlmostEqual(refund.amount, -20.0)
        self.assertEqual(refund.source_transaction_id, tx)
        difference = self._ledger(order, kind="exchange").filtered("refund_id")
        self.assertAlmostEqual(difference.amount, 20.0)
        self.assertFalse(difference.quantity)
        # Nothing left: the shirts were exchanged, their difference refunded.
        self.assertAlmostEqual(order._get_online_refundable_amount(), 0.0)
        self.assertFalse(self.env["sale.order.refund.line"]._get_left_quantities(order))

    def test_exchange_at_the_same_price_closes_as_exchanged(self):
        self.env["stock.quant"]._update_available_quantity(
            self.sizes["XL"], self.warehouse.lot_stock_id, 5.0
        )
        order, _tx = self._delivered_shirts("M")
        request = self._exchange(order, "XL")
        request.action_approve()
        self._receive(request)
        self.assertEqual(request.state, "exchanged")
        subjects = request.message_ids.mapped("subject")
        self.assertTrue(any("your exchange is on its way" in (s or "") for s in subjects))
        self.assertFalse(any("products received" in (s or "") for s in subjects))

    def test_invoiced_exchange_credits_the_difference(self):
        order, _tx = self._paid_order(lines=[(self.sizes["M"], 1)], invoiced=True)
        self._deliver(order)
        request = self._exchange(order, "S")
        request.action_approve()
        self._receive(request)
        request.with_user(self.refunder).action_refund()
        # The difference's credit note is the refund's: it credits no units of
        # the order's line, so the order has nothing to invoice again.
        credit_note = request.refund_transaction_ids.sudo().refund_move_ids
        self.assertEqual(credit_note.move_type, "out_refund")
        self.assertEqual(credit_note.state, "posted")
        self.assertAlmostEqual(credit_note.amount_total, 10.0)
        self.assertIn("exchanged for", credit_note.invoice_line_ids.name)
        self.assertFalse(credit_note.invoice_line_ids.sale_line_ids)
        self.assertEqual(order.order_line.qty_invoiced, 1.0, "nothing to invoice again")

    def test_mixed_request_refunds_one_line_and_the_other_difference(self):
        order, _tx = self._paid_order(lines=[(self.sizes["M"], 2), (self.product, 1)])
        self._deliver(order)
        request = self._submit(
            order,
            {
                self.sizes["M"]: {
                    "quantity": 1,
                    "reason": self.reason,
                    "exchange": self.sizes["S"],
                },
                self.product: 1,
            },
        )
        request.action_approve()
        self._receive(request)
        self.assertAlmostEqual(request.refund_amount, 50.0 + 10.0)
        request.with_user(self.refunder).action_refund()
        self.assertAlmostEqual(request.refund_transaction_ids.amount, -60.0)
        self.assertEqual(
            request.line_ids.filtered(lambda ln: ln.resolution == "refund").quantity_refunded, 1.0
        )
        self.assertEqual(
            request.line_ids.filtered(lambda ln: ln.resolution == "exchange").quantity_refunded, 0.0
        )

    # --- 6. Release ------------------------------------------------------------------

    def test_rejecting_an_approved_exchange_frees_the_variant_and_the_units(self):
        order, _tx = self._delivered_shirts("M")
        request = self._exchange(order, "S")
        request.action_approve()
        request.action_reject("Not in its original state")
        self.assertEqual(request.exchange_picking_ids.state, "cancel")
        self.assertFalse(self._ledger(order, kind="exchange"))
        self.assertEqual(self.sizes["S"].with_context(warehouse=self.warehouse.id).free_qty, 10.0)
        self.assertAlmostEqual(order._get_online_refundable_amount(), 100.0)

    def test_shipped_exchange_cannot_be_cancelled(self):
        self.website.return_exchange_shipping = "approval"
        order, _tx = self._delivered_shirts("M")
        request = self._exchange(order, "S")
        request.action_approve()
        delivery = request.exchange_picking_ids
        delivery.move_lines.quantity_done = 1.0
        delivery._action_done()
        with self.assertRaisesRegex(UserError, "already shipped"):
            request.action_cancel()

    # --- Where exchanges show ----------------------------------------------------------

    def test_returns_analysis_counts_exchanges(self):
        order, _tx = self._delivered_shirts("M", qty=2)
        request = self._exchange(order, "S")
        request.action_approve()
        report = self.env["sale.return.report"]
        report.flush()
        row = report.search([("request_id", "=", request.id)])
        self.assertEqual(row.resolution, "exchange")
        self.assertEqual(row.exchange_product_id, self.sizes["S"])
        self.assertEqual(row.qty_exchanged, 1.0)
        self.assertEqual(row.qty_refunded, 0.0)


@tagged("post_install", "-at_install")
class TestReturnExchangePortal(ExchangeMixin, ReturnHttpMixin, OrderHandlingHttpCase):
    """The exchange on the customer's form, over HTTP and in Chromium."""

    def setUp(self):
        super().setUp()
        self._setup_http_return_shop("Exchange Portal Lamp")
        warehouse = self.env["stock.warehouse"].search(
            [("company_id", "=", self.website.company_id.id)], limit=1
        )
        self.sizes = self._setup_shirt(self.env, warehouse, name="Tour Shirt")
        self.portal_user = self._new_portal_customer("exchange_portal_eva")
        self.customer = self.portal_user.partner_id
        self.order = self._delivered_order(partner=self.customer, lines=[(self.sizes["M"], 2)])
        self.line = self.order.order_line
        self.url = "/my/orders/%s/return" % self.order.id

    def test_form_offers_the_cheaper_size_and_names_the_dearer_one(self):
        self.authenticate(self.portal_user.login, self.portal_user.login)
        response, _csrf, _token = self._form()
        self.assertIn('name="exchange_%s"' % self.line.id, response.text)
        self.assertIn('value="%s"' % self.sizes["S"].id, response.text)
        self.assertNotIn('<option value="%s"' % self.sizes["L"].id, response.text)
        self.assertIn("o_wsoh_return_exchange_dearer", response.text)

    def test_odd_exchange_values_rerender_the_form_and_create_nothing(self):
        other = self.env["product.product"].create(
            {"name": "Exchange Other Product", "type": "consu", "is_published": True}
        )
        field = "exchange_%s" % self.line.id
        for value, message in (
            ("abc", "could not be read"),
            ("-1", "could not be read"),
            ("1.5", "could not be read"),
            ("9" * 12, "could not be read"),
            ("\u0661", "could not be read"),
            ("0", "another size or colour"),
            ("999999999", "another size or colour"),
            (str(other.id), "another size or colour"),
            (str(self.sizes["M"].id), "another size or colour"),
            (str(self.sizes["L"].id), "costs more, so it cannot"),
            (str(self.sizes["XL"].id), "not available in that quantity"),
        ):
            with self.subTest(value=value):
                self._assert_form_error({field: value}, message)

    def test_exchange_sent_as_a_file_is_refused(self):
        self._assert_form_error(
            {}, "could not be read", files={"exchange_%s" % self.line.id: ("x", b"1")}
        )

    def test_empty_choice_is_a_refund(self):
        self.authenticate(self.portal_user.login, self.portal_user.login)
        self._post({"exchange_%s" % self.line.id: ""})
        self.assertEqual(self._requests(self.order).line_ids.resolution, "refund")

    def test_customer_exchanges_a_size_in_chromium(self):
        self.start_tour(self.url, "wsoh_return_exchange", login=self.portal_user.login)
        line = self._requests(self.order).line_ids
        self.assertEqual(line.resolution, "exchange")
        self.assertEqual(line.exchange_product_id, self.sizes["S"])
        self.assertEqual(line.quantity, 1)
