"""The refund ledger: what each refund gave back, per order line.

Money leaves through several doors (the order's Refund window and button, a
return request's Refund, the retries of a failed refund). Each refund writes
here, in the transaction that reserves it, the quantity and the amount it
gives back per order line; shipping, order-level discounts and amounts given
without products have lines of their own. Every door reads this one ledger,
so that no unit and no cent goes back twice: a line of a refund that holds
money (draft, pending, done, or failed until retried or cancelled) counts, a
cancelled refund's lines do not.
"""

from flectra import _, api, fields, models
from flectra.exceptions import AccessError
from flectra.tools import float_compare

from .refund_engine import REFUND_RESERVING_STATES, is_refund_engine

LEDGER_KINDS = [
    ("product", "Product"),
    ("shipping", "Shipping"),
    ("discount", "Discount"),
    ("amount", "Amount"),
    # Units exchanged for another variant (no refund), or the price difference
    # the customer got back for them (with the refund that paid it).
    ("exchange", "Exchange"),
]


class SaleOrderRefundLine(models.Model):
    _name = "sale.order.refund.line"
    _description = "Refund Ledger Line"
    _order = "id"

    refund_id = fields.Many2one(
        "payment.transaction",
        readonly=True,
        index=True,
        ondelete="cascade",
        help="Empty for units exchanged: they hold while their return request is open or done.",
    )
    order_id = fields.Many2one(
        "sale.order",
        required=True,
        readonly=True,
        index=True,
        ondelete="cascade",
    )
    sale_line_id = fields.Many2one(
        "sale.order.line",
        "Order Line",
        readonly=True,
        index=True,
        ondelete="set null",
        help="Empty for an amount given back without products.",
    )
    return_request_id = fields.Many2one(
        "sale.return.request",
        readonly=True,
        index=True,
        ondelete="set null",
        help="The return request this refund paid back, if any.",
    )
    kind = fields.Selection(LEDGER_KINDS, required=True, readonly=True)
    quantity = fields.Float(
        readonly=True,
        digits="Product Unit of Measure",
        help="In the order line's unit.",
    )
    # Depends on the order only: an order's currency never changes once it is
    # refunded, and following it would look the ledger up at each checkout.
    currency_id = fields.Many2one(related="order_id.currency_id", depends=["order_id"])
    amount = fields.Monetary(
        readonly=True,
        currency_field="currency_id",
        help="What this line gave back, taxes included.",
    )
    # Dropped from the cache by payment.transaction.write instead of depending
    # on the refund's state, which every payment's state change would follow.
    refund_state = fields.Selection(
        related="refund_id.state", depends=["refund_id"], string="Refund Status"
    )

    _sql_constraints = [
        (
            "refund_or_exchange",
            "CHECK(refund_id IS NOT NULL OR kind = 'exchange')",
            "A refund ledger line belongs to a refund, or holds exchanged units.",
        ),
    ]

    # ------------------------------------------------------------------
    # Only the refund code writes the ledger
    # ------------------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        if not is_refund_engine(self.env):
            raise AccessError(_("The refund ledger is written by the refunds themselves."))
        return super().create(vals_list)

    def write(self, vals):
        if not is_refund_engine(self.env):
            raise AccessError(_("The refund ledger is written by the refunds themselves."))
        return super().write(vals)

    def unlink(self):
        if not is_refund_engine(self.env):
            raise AccessError(_("The refund ledger is written by the refunds themselves."))
        return super().unlink()

    # ------------------------------------------------------------------
    # Reading it
    # ------------------------------------------------------------------

    def _filter_holding(self):
        """The lines of refunds that hold money back (not cancelled), and the
        exchanged units. A refund
        split over several payments keeps the lines of the split: they hold
        while any refund of it does (one cancelled, another paid)."""

        def holds(refund):
            return refund.state in REFUND_RESERVING_STATES or any(
                other.state in REFUND_RESERVING_STATES for other in refund.refund_split_ids
            )

        # Exchanged units hold until their request lets them go (_release).
        return self.filtered(lambda line: not line.refund_id or holds(line.refund_id))

    def _get_quantities(self):
        """{sale.order.line id: quantity} of these ledger lines."""
        quantities = {}
        for line in self.filtered("sale_line_id"):
            key = line.sale_line_id.id
            quantities[key] = quantities.get(key, 0.0) + line.quantity
        return quantities

    @api.model
    def _get_refunded_quantities(self, order):
        """{sale.order.line id: quantity} of ``order`` refunded, being refunded or
        failed (held until retried or cancelled)."""
        order.ensure_one()
        return order.sudo().refund_ledger_ids._filter_holding()._get_quantities()

    @api.model
    def _get_left_quantities(self, order):
        """{sale.order.line: quantity} of ``order`` not refunded yet, for every
        product line."""
        refunded = self._get_refunded_quantities(order)
        left = {}
        for line in order.order_line.filtered(lambda ln: not ln.display_type):
            qty = line.product_uom_qty - refunded.get(line.id, 0.0)
            if float_compare(qty, 0.0, precision_rounding=line.product_uom.rounding) > 0:
                left[line] = qty
        return left

    @api.model
    def _prepare_lines(
        self, order, line_quantities, amount=None, return_request=None, exchange_differences=None
    ):
        """Ledger values of a refund of ``amount`` of ``order``: {sale.order.line:
        quantity} with each line's amount, or, without lines, ``amount`` on a
        line of its own. When the lines cost more or less than what the refund
        gives (money refunded earlier without products, a credit note's
        rounding), a line of kind amount holds the difference: the ledger of a
        refund always adds up to its amount."""
        request_id = return_request.id if return_request else False
        currency = order.currency_id
        engine = self.env["sale.order.refund.engine"]
        values = [
            {
                "order_id": order.id,
                "sale_line_id": line.id,
                "kind": self._get_line_kind(line),
                "quantity": qty,
                "amount": currency.round(engine._get_line_amount(line, qty)),
                "return_request_id": request_id,
            }
            for line, qty in (line_quantities or {}).items()
            if qty
        ] + [
            {
                "order_id": order.id,
                "sale_line_id": entry["sale_line"].id,
                "kind": "exchange",
                "amount": currency.round(entry["amount"]),
                "return_request_id": request_id,
            }
            for entry in exchange_differences or []
        ]
        if amount is not None or not values:
            difference = currency.round((amount or 0.0) - sum(v["amount"] for v in values))
            if not values or not currency.is_zero(difference):
                values.append(
                    {
                        "order_id": order.id,
                        "kind": "amount",
                        "amount": difference,
                        "return_request_id": request_id,
                    }
                )
        return values

    @api.model
    def _get_line_kind(self, line):
        if "is_delivery" in line._fields and line.is_delivery:
            return "shipping"
        if line.price_subtotal < 0:
            return "discount"
        return "product"
