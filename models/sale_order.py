from datetime import timedelta

from flectra import _, api, fields, models
from flectra.tools import float_compare, float_is_zero

# The three steps of the eCommerce documentation, plus the way out.
ECOMMERCE_STATUS = [
    ("quotation", "Quotation"),
    ("sent", "Quotation sent"),
    ("order", "Order"),
    ("cancel", "Cancelled"),
]
SALE_STATE_TO_ECOMMERCE = {
    "draft": "quotation",
    "sent": "sent",
    "sale": "order",
    "done": "order",
    "cancel": "cancel",
}


class SaleOrder(models.Model):
    _inherit = "sale.order"

    # --- Order queues and statuses ------------------------------------------
    ecommerce_status = fields.Selection(
        ECOMMERCE_STATUS,
        string="eCommerce Status",
        compute="_compute_ecommerce_status",
        store=True,
        help="Where a web order stands: a cart or quotation, a quotation whose "
        "customer checked out (Quotation sent), or a confirmed order.",
    )
    awaiting_offline_payment = fields.Boolean(
        compute="_compute_awaiting_offline_payment",
        store=True,
        help="The customer chose an offline payment method (wire transfer, pay "
        "in store) and the money has not been received yet.",
    )
    awaiting_payment = fields.Boolean(
        compute="_compute_awaiting_offline_payment",
        store=True,
        help="Confirmed, but the offline payment is still pending: do not treat "
        "it as paid.",
    )

    @api.depends("state", "website_id")
    def _compute_ecommerce_status(self):
        for order in self:
            order.ecommerce_status = (
                SALE_STATE_TO_ECOMMERCE.get(order.state) if order.website_id else False
            )

    @api.depends(
        "state",
        "transaction_ids.state",
        "transaction_ids.acquirer_id.is_offline_payment",
    )
    def _compute_awaiting_offline_payment(self):
        for order in self:
            pending = order.transaction_ids.filtered(
                lambda tx: tx.state == "pending" and tx.acquirer_id.is_offline_payment
            )
            order.awaiting_offline_payment = bool(pending)
            order.awaiting_payment = bool(pending) and order.state in ("sale", "done")

    # --- Actions -------------------------------------------------------------
    def action_confirm_web_orders(self):
        """Confirm the selected quotations from the To Confirm queue.

        Orders that are no longer quotations (already confirmed or cancelled,
        maybe by a colleague a minute ago) are skipped and named in the
        answer, rather than failing the whole batch.
        """
        to_confirm = self.filtered(lambda order: order.state in ("draft", "sent"))
        skipped = self - to_confirm
        if to_confirm:
            to_confirm.action_confirm()
        messages = []
        if to_confirm:
            messages.append(_("Confirmed: %s.", ", ".join(to_confirm.mapped("name"))))
        if skipped:
            messages.append(
                _(
                    "Skipped, as they are no longer quotations (already confirmed or cancelled): %s.",
                    ", ".join(skipped.mapped("name")),
                )
            )
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": _("Confirm orders"),
                "message": " ".join(messages) or _("No order selected."),
                "type": "warning" if skipped else "success",
                "sticky": bool(skipped),
                "next": {"type": "ir.actions.act_window_close"},
            },
        }

    # --- Online returns --------------------------------------------------------
    return_request_ids = fields.One2many(
        "sale.return.request", "order_id", string="Return Requests"
    )
    return_request_count = fields.Integer(compute="_compute_return_request_count")

    def _compute_return_request_count(self):
        data = self.env["sale.return.request"].read_group(
            [("order_id", "in", self.ids)], ["order_id"], ["order_id"]
        )
        counts = {row["order_id"][0]: row["order_id_count"] for row in data}
        for order in self:
            order.return_request_count = counts.get(order.id, 0)

    def action_view_return_requests(self):
        self.ensure_one()
        action = self.env["ir.actions.actions"]._for_xml_id(
            "website_sale_order_handling.sale_return_request_action"
        )
        action["domain"] = [("order_id", "=", self.id)]
        action["context"] = {"create": False}
        if self.return_request_count == 1:
            action["views"] = [(False, "form")]
            action["res_id"] = self.return_request_ids.id
        return action

    def _get_return_refusal_reason(self):
        """Why this order cannot be returned online at all, or ''."""
        self.ensure_one()
        if not self.website_id.allow_online_returns:
            return _("This shop does not accept online returns.")
        if self.state not in ("sale", "done"):
            return _("Only confirmed orders can be returned.")
        return ""

    def _get_return_lines_info(self):
        """One entry per delivered product line, for the return form.

        Each entry: ``line``, ``delivered`` and ``returnable`` quantities (in
        the line's unit), and ``refusal`` (why it cannot be returned, or '').
        """
        self.ensure_one()
        since = self._get_return_window_start()
        info = []
        for line in self.order_line.filtered(lambda ln: not ln.display_type):
            if line.product_id.type in ("product", "consu"):
                delivered = line._get_return_delivered_qty()
            else:
                # Services have no transfer: they are listed (disabled) as delivered by hand.
                delivered = line.qty_delivered
            if float_is_zero(delivered, precision_rounding=line.product_uom.rounding):
                continue
            refusal = line.product_id.product_tmpl_id._get_return_refusal_reason()
            returnable = 0.0 if refusal else line._get_returnable_qty(since=since)
            if not refusal and float_is_zero(
                returnable, precision_rounding=line.product_uom.rounding
            ):
                if since and line._get_return_delivered_qty(since=since) <= 0:
                    refusal = _("The return period for this product has ended.")
                else:
                    refusal = _("Everything delivered is already returned or requested.")
            info.append(
                {
                    "line": line,
                    "delivered": delivered,
                    "returnable": returnable,
                    "refusal": refusal,
                }
            )
        return info

    def _get_return_window_start(self):
        """Deliveries done before this datetime are out of the return window."""
        days = self.website_id.return_window_days
        return fields.Datetime.now() - timedelta(days=days) if days else False

    def _can_request_return(self):
        """True when the "Return products" button should show on the order."""
        self.ensure_one()
        if self._get_return_refusal_reason():
            return False
        return any(entry["returnable"] > 0 for entry in self._get_return_lines_info())


class SaleOrderLine(models.Model):
    _inherit = "sale.order.line"

    # --- Online returns --------------------------------------------------------
    def _get_return_moves(self):
        """Delivery moves (to the customer) and return moves (from them)."""
        self.ensure_one()
        moves = self.move_ids.filtered(
            lambda m: m.product_id == self.product_id and not m.scrapped
        )
        deliveries = moves.filtered(
            lambda m: m.location_dest_id.usage == "customer"
            and m.location_id.usage != "customer"
        )
        returns = moves.filtered(
            lambda m: m.location_id.usage == "customer"
            and m.location_dest_id.usage != "customer"
        )
        return deliveries, returns

    def _get_return_delivered_qty(self, since=False):
        """Quantity delivered (done), optionally only by deliveries done since ``since``."""
        deliveries = self._get_return_moves()[0].filtered(
            lambda m: m.state == "done" and (not since or m.date >= since)
        )
        return sum(
            m.product_uom._compute_quantity(m.product_uom_qty, self.product_uom)
            for m in deliveries
        )

    def _get_return_returned_qty(self):
        """Quantity returned or on its way back (return pickings not cancelled)."""
        returns = self._get_return_moves()[1].filtered(lambda m: m.state != "cancel")
        return sum(
            m.product_uom._compute_quantity(m.product_uom_qty, self.product_uom)
            for m in returns
        )

    def _get_return_requested_qty(self):
        """Quantity in requests waiting for approval (they have no picking yet)."""
        request_lines = self.env["sale.return.request.line"].sudo().search(
            [("sale_line_id", "=", self.id), ("request_id.state", "=", "requested")]
        )
        return sum(request_lines.mapped("quantity"))

    def _get_returnable_qty(self, since=False):
        """Delivered − returned − requested, and no more than delivered since ``since``.

        Earlier returns are counted against the oldest deliveries, which is the
        customer-friendly reading when a line was delivered in several parts.
        """
        self.ensure_one()
        qty = (
            self._get_return_delivered_qty()
            - self._get_return_returned_qty()
            - self._get_return_requested_qty()
        )
        if since:
            qty = min(qty, self._get_return_delivered_qty(since=since))
        if float_compare(qty, 0.0, precision_rounding=self.product_uom.rounding) <= 0:
            return 0.0
        return qty
