from flectra import _, api, fields, models
from flectra.exceptions import UserError


def _is_shipping_line(line):
    # delivery is not a dependency: without it, no line is a shipping line.
    return "is_delivery" in line._fields and line.is_delivery


class SaleOrderRefundWizard(models.TransientModel):
    """The order's Refund button: what to give back, and why, before the refund
    engine (sale.order.refund.engine._refund) does it."""

    _name = "sale.order.refund.wizard"
    _description = "Refund an Order"

    order_id = fields.Many2one("sale.order", required=True, readonly=True, ondelete="cascade")
    currency_id = fields.Many2one(related="order_id.currency_id")
    refund_mode = fields.Selection(
        [("lines", "Chosen quantities"), ("amount", "An amount")],
        string="Refund",
        default="lines",
        required=True,
    )
    line_ids = fields.One2many("sale.order.refund.wizard.line", "wizard_id", string="Lines")
    include_delivery = fields.Boolean(
        "Refund Shipping",
        help="Give back what the customer paid for shipping (left to refund of it).",
    )
    has_delivery_line = fields.Boolean(compute="_compute_order_figures")
    delivery_amount = fields.Monetary(
        "Shipping Left to Refund",
        compute="_compute_order_figures",
        currency_field="currency_id",
    )
    amount = fields.Monetary(
        currency_field="currency_id",
        help="Given back without a credit note: a gesture, not a return of products.",
    )
    reason = fields.Text(
        required=True,
        help="Why the order is refunded: posted as an internal note on the order, "
        "never sent to the customer.",
    )
    restock = fields.Boolean(
        "Return to Stock",
        help="Create the return transfer of the refunded stored products from their "
        "delivery (what was delivered and not returned yet), as a return request would.",
    )
    can_restock = fields.Boolean(compute="_compute_order_figures")
    full_only = fields.Boolean(compute="_compute_order_figures")
    capability_note = fields.Char(compute="_compute_order_figures")
    refundable_amount = fields.Monetary(
        "Left to Refund",
        compute="_compute_order_figures",
        currency_field="currency_id",
    )
    lines_amount = fields.Monetary(
        compute="_compute_amount_to_refund", currency_field="currency_id"
    )
    amount_to_refund = fields.Monetary(
        "Amount to Refund",
        compute="_compute_amount_to_refund",
        currency_field="currency_id",
        help="Taxes included, and never more than this order has left to refund.",
    )
    warning = fields.Char(compute="_compute_amount_to_refund")

    @api.model
    def default_get(self, fields_list):
        res = super().default_get(fields_list)
        order = self.env["sale.order"].browse(res.get("order_id"))
        if not order:
            return res
        # What is left is read in sudo: only for an order the user may refund.
        self.env["sale.order.refund.engine"]._check_access(order)
        left = self.env["sale.order.refund.line"].sudo()._get_left_quantities(order)
        lines = self._get_choosable_lines(order)
        if "line_ids" in fields_list:
            res["line_ids"] = [
                (0, 0, {"sale_line_id": line.id, "qty_left": left[line], "quantity": left[line]})
                for line in lines
                if line in left
            ]
        if "include_delivery" in fields_list:
            res["include_delivery"] = any(_is_shipping_line(line) for line in left)
        return res

    @api.model_create_multi
    def create(self, vals_list):
        # Its figures are computed in sudo: the order is checked first (an
        # order from the context's default is checked by default_get).
        orders = self.env["sale.order"].browse(
            [vals["order_id"] for vals in vals_list if vals.get("order_id")]
        )
        if orders:
            self.env["sale.order.refund.engine"]._check_access(orders)
        return super().create(vals_list)

    @api.model
    def _get_choosable_lines(self, order):
        """Product lines one picks quantities of: not shipping, not order-level
        discounts (shared out by the engine), not sections or notes."""
        return order.order_line.filtered(
            lambda ln: not ln.display_type and not _is_shipping_line(ln) and ln.price_subtotal >= 0
        )

    def _get_shipping_quantities(self):
        """{shipping line: quantity left to refund of it}."""
        self.ensure_one()
        left = self.env["sale.order.refund.line"].sudo()._get_left_quantities(self.order_id)
        return {line: qty for line, qty in left.items() if _is_shipping_line(line)}

    @api.depends("order_id")
    def _compute_order_figures(self):
        for wizard in self:
            order = wizard.order_id.sudo()
            if not order:
                wizard.update(
                    {
                        "has_delivery_line": False,
                        "delivery_amount": 0.0,
                        "refundable_amount": 0.0,
                        "full_only": False,
                        "capability_note": False,
                        "can_restock": False,
                    }
                )
                continue
            acquirers = order._get_online_payments().acquirer_id
            supports = set(acquirers.mapped("support_refund"))
            shipping = wizard._get_shipping_quantities()
            wizard.has_delivery_line = bool(shipping)
            engine = self.env["sale.order.refund.engine"]
            wizard.delivery_amount = sum(
                engine._get_line_amount(line, qty) for line, qty in shipping.items()
            )
            wizard.refundable_amount = order.online_refundable_amount
            wizard.full_only = "full_only" in supports
            wizard.capability_note = False
            if "none" in supports:
                wizard.capability_note = acquirers.filtered(lambda a: a.support_refund == "none")[
                    :1
                ]._get_refund_unsupported_message()
            elif wizard.full_only:
                wizard.capability_note = _(
                    "%s can only refund a payment in full: everything left to refund "
                    "goes back to the customer.",
                    ", ".join(
                        acquirers.filtered(lambda a: a.support_refund == "full_only").mapped("name")
                    ),
                )
            left_out = order._get_payments_left_out()
            if left_out:
                note = _(
                    "Left out: %s, which the shop did not create as they are (made by hand, "
                    "or not matching the order's amount or customer): refund those from the "
                    "acquirer's dashboard if the money was really received.",
                    ", ".join(left_out.mapped("reference")),
                )
                wizard.capability_note = " ".join(filter(None, [wizard.capability_note, note]))
            wizard.can_restock = any(
                line.product_id.type == "product" and line.qty_delivered > 0
                for line in order.order_line
            )

    @api.depends(
        "refund_mode",
        "amount",
        "include_delivery",
        "line_ids.quantity",
        "refundable_amount",
        "full_only",
    )
    def _compute_amount_to_refund(self):
        for wizard in self:
            order = wizard.order_id.sudo()
            left = wizard.refundable_amount
            wizard.warning = False
            wizard.lines_amount = 0.0
            if wizard.full_only or not order:
                wizard.amount_to_refund = left
                continue
            if wizard.refund_mode == "amount":
                wanted = wizard.amount
            else:
                engine = self.env["sale.order.refund.engine"]
                quantities = engine._add_discount_shares(order, wizard._get_line_quantities())
                wanted = wizard.lines_amount = order.currency_id.round(
                    sum(engine._get_line_amount(line, qty) for line, qty in quantities.items())
                )
            if order.currency_id.compare_amounts(wanted, left) > 0:
                wizard.warning = _(
                    "This is more than the %(left)s left to refund on this order: "
                    "choose less, or refund an amount.",
                    left=left,
                )
            wizard.amount_to_refund = min(wanted, left)

    def _get_line_quantities(self):
        """{sale.order.line: quantity} chosen, shipping included if asked."""
        self.ensure_one()
        quantities = {line.sale_line_id: line.quantity for line in self.line_ids if line.quantity}
        if self.include_delivery:
            quantities.update(self._get_shipping_quantities())
        return quantities

    def action_refund(self):
        self.ensure_one()
        engine = self.env["sale.order.refund.engine"]
        reason = self.reason or ""
        if self.full_only:
            result = engine._refund(self.order_id, reason=reason, restock=self.restock)
        elif self.refund_mode == "amount":
            result = engine._refund(self.order_id, amount=self.amount, reason=reason)
        else:
            quantities = self._get_line_quantities()
            if not quantities:
                raise UserError(_("Choose at least one line to refund."))
            result = engine._refund(
                self.order_id, line_quantities=quantities, reason=reason, restock=self.restock
            )
        return engine._notification(result)


class SaleOrderRefundWizardLine(models.TransientModel):
    _name = "sale.order.refund.wizard.line"
    _description = "Refund an Order: Line"

    wizard_id = fields.Many2one("sale.order.refund.wizard", required=True, ondelete="cascade")
    sale_line_id = fields.Many2one(
        "sale.order.line", "Order Line", required=True, readonly=True, ondelete="cascade"
    )
    product_id = fields.Many2one(related="sale_line_id.product_id")
    product_uom_id = fields.Many2one(related="sale_line_id.product_uom", string="Unit")
    currency_id = fields.Many2one(related="wizard_id.currency_id")
    qty_left = fields.Float(
        "Left to Refund",
        digits="Product Unit of Measure",
        readonly=True,
        help="Ordered, minus what earlier refunds of this order gave back.",
    )
    quantity = fields.Float("Quantity to Refund", digits="Product Unit of Measure")
    price_total = fields.Monetary(
        "Amount",
        compute="_compute_price_total",
        currency_field="currency_id",
        help="Taxes included.",
    )

    @api.depends("quantity", "sale_line_id")
    def _compute_price_total(self):
        for line in self:
            sale_line = line.sale_line_id.sudo()
            line.price_total = (
                self.env["sale.order.refund.engine"]._get_line_amount(sale_line, line.quantity)
                if sale_line
                else 0.0
            )
