from flectra import _, api, models
from flectra.tools import float_compare, float_is_zero

from .sale_order_refund_line import REFUND_RESERVING_STATES

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

    def _get_return_info(self, since=False):
        """One entry per delivered product line among these lines (of one
        order), for the return form.

        Each entry: ``line``, ``delivered``, ``refunded`` (what the refund
        ledger gave back of it), ``exchanged`` (for another variant) and
        ``returnable`` quantities (in the line's
        unit), and ``refusal`` (why it cannot be returned, or ''). A unit
        refunded already (the customer kept it, or it came back) is never
        returned for money again. ``since``: deliveries before it are out of
        the return window.
        """
        info = []
        # One query for the requested quantities of all lines, not one per line.
        requested = self._get_return_requested_qties()
        refunded_qties = self.env["sale.order.refund.line"]._get_refunded_quantities(self.order_id)
        # Units exchanged for another variant count as refunded: said apart.
        exchanged_qties = (
            self.order_id.sudo()
            .refund_ledger_ids.filtered(lambda entry: entry.kind == "exchange")
            ._get_quantities()
        )
        for line in self:
            if line.product_id.type in ("product", "consu"):
                delivered = line._get_return_delivered_qty()
            else:
                # Services have no transfer: they are listed (disabled) as delivered by hand.
                delivered = line.qty_delivered
            rounding = line.product_uom.rounding
            if float_is_zero(delivered, precision_rounding=rounding):
                continue
            refusal = line.product_id.product_tmpl_id._get_return_refusal_reason()
            refunded = refunded_qties.get(line.id, 0.0)
            line_requested = requested.get(line.id, 0.0)
            returnable = (
                0.0
                if refusal
                else min(
                    line._get_returnable_qty(since=since, requested=line_requested),
                    line.product_uom_qty - refunded - line_requested,
                )
            )
            if float_compare(returnable, 0.0, precision_rounding=rounding) <= 0:
                returnable = 0.0
            if not refusal and not returnable:
                refusal = line._get_not_returnable_reason(since, refunded, line_requested)
            info.append(
                {
                    "line": line,
                    "delivered": delivered,
                    "refunded": refunded - exchanged_qties.get(line.id, 0.0),
                    "exchanged": exchanged_qties.get(line.id, 0.0),
                    "returnable": returnable,
                    "refusal": refusal,
                }
            )
        return info

    def _get_not_returnable_reason(self, since, refunded, requested):
        """Why nothing is left to return of this line, whose product may be
        returned: ``refunded`` and ``requested`` are its quantities so far."""
        self.ensure_one()
        rounding = self.product_uom.rounding
        if since and self._get_return_delivered_qty(since=since) <= 0:
            return _("The return period has ended.")
        if float_compare(refunded, 0.0, precision_rounding=rounding) > 0 and (
            float_compare(refunded + requested, self.product_uom_qty, precision_rounding=rounding)
            >= 0
        ):
            return _("Already refunded.")
        return _("Everything delivered is already returned or requested.")

    def _has_returnable_qty(self, since=False):
        """Whether any of these lines (of one order) has a quantity the
        customer may ask to return: the order page's Return products button.

        The same rule as _get_return_info (delivered, minus
        returned, requested and refunded; within the window since ``since``;
        the product's return policy), read in one query instead of the
        moves, their locations, the products' categories, the requests and
        the refund ledger one after the other: the button shows on every
        page of a delivered order. A done return whose move lines count in
        another unit than the move is left to _get_return_info.
        """
        lines = self.filtered(lambda line: not line.display_type) if self else self
        if not lines:
            return False
        for model in (
            "sale.order.line",
            "product.template",
            "product.category",
            "stock.move",
            "stock.move.line",
            "sale.return.request",
            "sale.return.request.line",
            "sale.order.refund.line",
            "payment.transaction",
        ):
            self.env[model].flush()
        self.env.cr.execute(
            """
            SELECT line.id, line.product_uom_qty, line.product_uom,
                   tmpl.type, tmpl.return_policy, categ.return_policy,
                   COALESCE(requested.qty, 0), COALESCE(refunded.qty, 0),
                   move.product_uom, move.state, move.date, move.product_uom_qty,
                   src.usage = 'customer', dest.usage = 'customer',
                   done.qty, done.other_units
              FROM sale_order_line line
              JOIN product_product product ON product.id = line.product_id
              JOIN product_template tmpl ON tmpl.id = product.product_tmpl_id
         LEFT JOIN product_category categ ON categ.id = tmpl.categ_id
         LEFT JOIN (SELECT rl.sale_line_id, SUM(rl.quantity) AS qty
                      FROM sale_return_request_line rl
                      JOIN sale_return_request req ON req.id = rl.request_id
                     WHERE rl.sale_line_id IN %(lines)s AND req.state = 'requested'
                  GROUP BY rl.sale_line_id) requested ON requested.sale_line_id = line.id
         LEFT JOIN (SELECT ledger.sale_line_id, SUM(ledger.quantity) AS qty
                      FROM sale_order_refund_line ledger
                 LEFT JOIN payment_transaction refund ON refund.id = ledger.refund_id
                     WHERE ledger.sale_line_id IN %(lines)s
                       -- exchanged units hold without a refund
                       AND (ledger.refund_id IS NULL
                            OR refund.state IN %(holding)s
                            -- a split refund's lines hold while any part does
                            OR EXISTS (SELECT 1 FROM payment_transaction part
                                        WHERE part.refund_first_id = refund.id
                                          AND part.state IN %(holding)s))
                  GROUP BY ledger.sale_line_id) refunded ON refunded.sale_line_id = line.id
         LEFT JOIN stock_move move
                ON move.sale_line_id = line.id
               AND move.product_id = line.product_id
               AND NOT COALESCE(move.scrapped, FALSE)
               AND move.state != 'cancel'
         LEFT JOIN stock_location src ON src.id = move.location_id
         LEFT JOIN stock_location dest ON dest.id = move.location_dest_id
         LEFT JOIN LATERAL (
                    SELECT SUM(ml.qty_done) FILTER (WHERE ml.product_uom_id = move.product_uom)
                               AS qty,
                           COUNT(*) FILTER (WHERE ml.product_uom_id != move.product_uom)
                               AS other_units
                      FROM stock_move_line ml
                     WHERE ml.move_id = move.id AND move.state = 'done'
                   ) done ON TRUE
             WHERE line.id IN %(lines)s
            """,
            {"lines": tuple(lines.ids), "holding": tuple(REFUND_RESERVING_STATES)},
        )
        rows = self.env.cr.fetchall()
        # Records of one prefetch: the units are read at once (the page reads them anyway).
        uoms = {
            uom.id: uom
            for uom in self.env["uom.uom"].browse(
                {row[2] for row in rows} | {row[8] for row in rows if row[8]}
            )
        }
        totals = {}  # line id: its quantities, unit and whether its product may come back
        for (
            line_id,
            ordered,
            unit_id,
            product_type,
            policy,
            category_policy,
            requested,
            refunded,
            move_unit_id,
            state,
            date,
            move_qty,
            from_customer,
            to_customer,
            done_qty,
            other_units,
        ) in rows:
            unit = uoms[unit_id]
            entry = totals.setdefault(
                line_id,
                {
                    "ordered": ordered,
                    "unit": unit,
                    "allowed": self.env["product.template"]._is_returnable_by_policy(
                        product_type, policy, category_policy
                    ),
                    "requested": requested,
                    "refunded": refunded,
                    "delivered": 0.0,
                    "delivered_since": 0.0,
                    "returned": 0.0,
                },
            )
            if not move_unit_id:
                continue
            move_unit = uoms[move_unit_id]
            if to_customer and not from_customer and state == "done":
                qty = move_unit._compute_quantity(move_qty, unit)
                entry["delivered"] += qty
                if not since or date >= since:
                    entry["delivered_since"] += qty
            elif from_customer and not to_customer:
                if state == "done" and other_units:
                    # Move lines in another unit: the exact rule converts each.
                    return any(
                        info["returnable"] > 0 for info in lines.order_id._get_return_lines_info()
                    )
                qty = (done_qty or 0.0) if state == "done" else move_qty
                entry["returned"] += move_unit._compute_quantity(qty, unit)
        for entry in totals.values():
            rounding = entry["unit"].rounding
            if not entry["allowed"] or float_is_zero(
                entry["delivered"], precision_rounding=rounding
            ):
                continue
            qty = entry["delivered"] - entry["returned"] - entry["requested"]
            if since:
                qty = min(qty, entry["delivered_since"])
            qty = min(qty, entry["ordered"] - entry["refunded"] - entry["requested"])
            if float_compare(qty, 0.0, precision_rounding=rounding) > 0:
                return True
        return False
