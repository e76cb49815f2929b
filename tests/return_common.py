import re

from .common import OrderHandlingCase


class ReturnMixin:
    """Delivered web orders and a return policy, for the online-returns tests."""

    @classmethod
    def _setup_return_policy(cls):
        """The website takes returns for 30 days; each returned product gives a reason."""
        cls.website.write({"allow_online_returns": True, "return_window_days": 30})
        cls.reason = cls.env.ref("website_sale_order_handling.return_reason_damaged")
        cls.Request = cls.env["sale.return.request"]

    def _deliver(self, order, quantities=None, backorder=True):
        """Validate the open delivery, with {product: qty} done (all by default)."""
        picking = order.picking_ids.filtered(
            lambda p: p.state not in ("done", "cancel") and p.picking_type_code == "outgoing"
        )
        for move in picking.move_lines:
            move.quantity_done = (
                quantities.get(move.product_id, 0.0) if quantities else move.product_uom_qty
            )
        picking.with_context(cancel_backorder=not backorder)._action_done()
        return picking

    def _delivered_order(self, lines=None, partner=None):
        order = self._create_web_order(partner=partner, lines=lines or [(self.product, 5)])
        order.action_confirm()
        self._deliver(order)
        return order

    def _submit(self, order, quantities, reason=None, **kwargs):
        """Submit the online form as the portal controller does.

        ``quantities``: {product: qty, or {"quantity", "reason", "note"}};
        a product given a bare quantity gets ``reason`` (self.reason by default).
        """
        reason = reason if reason is not None else self.reason
        lines = {}
        for product, values in quantities.items():
            line = order.order_line.filtered(lambda ln, p=product: ln.product_id == p)
            lines[line.id] = (
                values if isinstance(values, dict) else {"quantity": values, "reason": reason}
            )
        return self.env["sale.return.request"].sudo()._create_from_portal(order, lines, **kwargs)

    def _receive(self, request, quantities=None, backorder=True):
        """Validate the open return transfer of ``request``: {product: qty}, all by default."""
        picking = request.picking_ids.filtered(lambda p: p.state not in ("done", "cancel"))
        for move in picking.move_lines:
            move.quantity_done = (
                quantities.get(move.product_id, 0.0) if quantities else move.product_uom_qty
            )
        picking.with_context(cancel_backorder=not backorder)._action_done()
        return picking


class ReturnCase(ReturnMixin, OrderHandlingCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._setup_return_policy()


class ReturnHttpMixin(ReturnMixin):
    """The same for an OrderHandlingHttpCase: website 1, served to the
    browser, takes returns and sells one stored, published lamp."""

    def _setup_http_return_shop(self, product_name):
        self.website = self.env["website"].browse(1)
        self.website.write({"allow_online_returns": True, "return_window_days": 30})
        self.reason = self.env.ref("website_sale_order_handling.return_reason_damaged")
        self.product = self.env["product.product"].create(
            {
                "name": product_name,
                "type": "product",
                "list_price": 50.0,
                "is_published": True,
                "taxes_id": [(6, 0, [])],
            }
        )
        warehouse = self.env["stock.warehouse"].search(
            [("company_id", "=", self.website.company_id.id)], limit=1
        )
        self.env["stock.quant"]._update_available_quantity(
            self.product, warehouse.lot_stock_id, 100.0
        )

    def _create_web_order(self, partner=None, lines=None):
        return self.env["sale.order"].create(
            {
                "partner_id": (partner or self.customer).id,
                "website_id": self.website.id,
                "order_line": [
                    (0, 0, {"product_id": product.id, "product_uom_qty": qty})
                    for product, qty in lines or [(self.product, 1)]
                ],
            }
        )

    # -- The return form over HTTP: self.url, self.line, self.order and
    # self.portal_user are the test's form, its product line, order and customer.
    def _requests(self, order):
        """The order's requests as the database has them after the HTTP calls."""
        return self.env["sale.return.request"].search([("order_id", "=", order.id)])

    def _form(self, url=None):
        response = self.url_open(url or self.url)
        self.assertEqual(response.status_code, 200)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', response.text).group(1)
        token = re.search(r'name="form_token" value="([^"]+)"', response.text).group(1)
        return response, csrf, token

    def _post(self, values=None, url=None, csrf=True, **overrides):
        _response, csrf_token, form_token = self._form(url)
        data = {
            "form_token": form_token,
            "qty_%s" % self.line.id: "1",
            "reason_%s" % self.line.id: str(self.reason.id),
            "note_%s" % self.line.id: "",
            "comment": "",
            "phone": "",
        }
        if csrf:
            data["csrf_token"] = csrf_token
        data.update(values or {})
        return self.url_open(url or self.url, data=data, **overrides)

    def _assert_form_error(self, values, message, files=None):
        self.authenticate(self.portal_user.login, self.portal_user.login)
        response = self._post(values, files=files)
        self.assertEqual(response.status_code, 200)
        self.assertIn("o_wsoh_return_error", response.text)
        self.assertIn(message, response.text)
        self.assertFalse(self._requests(self.order))
