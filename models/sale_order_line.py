from flectra import api, models
from flectra.tools import float_compare

# Cart changes that count as customer activity on an abandoned cart.
CART_ACTIVITY_FIELDS = {"product_id", "product_uom_qty"}


class SaleOrderLine(models.Model):
    _inherit = "sale.order.line"

    @api.model_create_multi
    def create(self, vals_list):
        lines = super().create(vals_list)
        lines.mapped("order_id")._touch_cart_activity()
        return lines

    def write(self, vals):
        res = super().write(vals)
        if CART_ACTIVITY_FIELDS.intersection(vals):
            self.mapped("order_id")._touch_cart_activity()
        return res

    def unlink(self):
        orders = self.mapped("order_id")
        res = super().unlink()
        orders.exists()._touch_cart_activity()
        return res

    # --- Online returns --------------------------------------------------------
    def _get_return_moves(self):
        """Delivery moves (to the customer) and return moves (from them)."""
        self.ensure_one()
        moves = self.move_ids.filtered(lambda m: m.product_id == self.product_id and not m.scrapped)
        deliveries = moves.filtered(
            lambda m: m.location_dest_id.usage == "customer" and m.location_id.usage != "customer"
        )
        returns = moves.filtered(
            lambda m: m.location_id.usage == "customer" and m.location_dest_id.usage != "customer"
        )
        return deliveries, returns

    def _get_return_delivered_qty(self, since=False):
        """Quantity delivered (done), optionally only by deliveries done since ``since``."""
        deliveries = self._get_return_moves()[0].filtered(
            lambda m: m.state == "done" and (not since or m.date >= since)
        )
        return sum(
            m.product_uom._compute_quantity(m.product_uom_qty, self.product_uom) for m in deliveries
        )

    def _get_return_returned_qty(self):
        """Quantity returned (what came back, which can exceed the demand) or
        on its way back (return pickings not done nor cancelled)."""
        returns = self._get_return_moves()[1].filtered(lambda m: m.state != "cancel")
        return sum(
            m.product_uom._compute_quantity(
                m.quantity_done if m.state == "done" else m.product_uom_qty, self.product_uom
            )
            for m in returns
        )

    def _get_return_requested_qty(self):
        """Quantity in requests waiting for approval (they have no picking yet)."""
        self.ensure_one()
        return self._get_return_requested_qties().get(self.id, 0.0)

    def _get_return_requested_qties(self):
        """{line id: quantity in requests waiting for approval}, for all these
        lines in one query (the return form and the order page show them all)."""
        if not self.ids:
            return {}
        groups = (
            self.env["sale.return.request.line"]
            .sudo()
            .read_group(
                [("sale_line_id", "in", self.ids), ("request_id.state", "=", "requested")],
                ["sale_line_id", "quantity:sum"],
                ["sale_line_id"],
            )
        )
        return {group["sale_line_id"][0]: group["quantity"] for group in groups}

    def _get_returnable_qty(self, since=False, requested=None):
        """Delivered − returned − requested, and no more than delivered since ``since``.

        Earlier returns are counted against the oldest deliveries, which is the
        customer-friendly reading when a line was delivered in several parts.
        ``requested``: this line's requested quantity when the caller already
        read it for all lines (see _get_return_requested_qties).
        """
        self.ensure_one()
        if requested is None:
            requested = self._get_return_requested_qty()
        qty = self._get_return_delivered_qty() - self._get_return_returned_qty() - requested
        if since:
            qty = min(qty, self._get_return_delivered_qty(since=since))
        if float_compare(qty, 0.0, precision_rounding=self.product_uom.rounding) <= 0:
            return 0.0
        return qty
