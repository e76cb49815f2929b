"""Exchanges: a returned product swapped for another variant of it.

From the customer's form to the warehouse:

1. **Offer** (``_get_options``): for each order line, the other variants of
   its product the customer may take instead: sold, published, possible, in
   stock on the order's warehouse, and costing today no more than the
   variant returned (a cheaper one gives back today's difference, never
   more than was paid). The variants that cost more are named on the form,
   not offered.
2. **Check the choice** (``_prepare_line_vals``) when the form is sent: the
   same rules, for the quantity returned. The request line keeps the variant,
   its price then and the difference the customer gets back.
3. **Reserve** (``_reserve``) when the request is approved: a new delivery
   of the order, to the same address, with the variant reserved at once. The
   refund ledger counts the exchanged units (kind ``exchange``), so no
   refund door pays them back. A variant that cannot be reserved stops the
   approval and says which: the salesperson may turn that line into a refund
   (the line's Refund Instead).
4. **Ship**: once the returned product is received (the website's default),
   or at once: before, the delivery cannot be validated
   (``_check_can_ship``).
5. **Refund the difference**: a cheaper variant gives back the difference
   with the request's refund, in the ledger too (``_get_differences_left``).
6. **Release** (``_release``) when the request is rejected or cancelled: the
   delivery is cancelled and the ledger lets the units go.
"""

from flectra import _, api, fields, models
from flectra.exceptions import UserError, ValidationError
from flectra.tools import float_compare

from .refund_engine import as_refund_engine


class ReturnExchange(models.AbstractModel):
    _name = "sale.return.exchange"
    _description = "Return Exchanges"

    # ------------------------------------------------------------------
    # 1. Offer, 2. check the customer's choice
    # ------------------------------------------------------------------

    @api.model
    def _get_options(self, lines, quantities=None):
        """{sale.order.line id: {"variants": [{"product", "price", "difference"}],
        "dearer": [product.product]}} for these lines of one order.

        A variant is offered at the price paid for the line, less what it
        costs below the returned variant today (on the order's pricelist):
        ``price``, per unit in the line's unit, discount included and taxes
        as on the line; ``difference``: what the customer gets back per unit,
        taxes included. One that costs more than the returned variant today
        is in ``dearer``.
        ``quantities``: {line id: quantity} each variant must have in stock
        (one unit when not given). Read for all lines at once: the form shows
        them all.
        """
        lines = lines.sudo().filtered(lambda line: not line.display_type)
        order = lines.order_id
        if not lines or len(order) != 1:
            return {}
        templates = lines.product_id.product_tmpl_id
        variants = (
            self.env["product.product"]
            .sudo()
            .with_context(warehouse=order.warehouse_id.id)
            .search([("product_tmpl_id", "in", templates.ids), ("sale_ok", "=", True)])
        )
        variants -= lines.product_id
        # Published on the order's website: a template's fields, read on the
        # templates (a variant's related copies cost a computation each).
        published = templates.filtered(
            lambda tmpl: (
                tmpl.website_published
                and (not tmpl.website_id or tmpl.website_id == order.website_id)
            )
        )
        variants = self._filter_possible(
            variants.filtered(lambda variant: variant.product_tmpl_id in published)
        )
        if not variants:
            return {}
        # What the loop below reads, read at once for every line and variant
        # (free_qty in one computation, not one per variant).
        lines.mapped("tax_id")
        (variants | lines.product_id).mapped("taxes_id")
        variants.mapped("free_qty")
        # The form names each variant: one name_get for all.
        variants.mapped("display_name")
        # Today's prices of the variants and of the products returned, on the
        # order's pricelist: a variant is compared with the variant it
        # replaces, as the shop sells both now.
        prices = order.pricelist_id._compute_price_rule(
            [(product, 1.0, order.partner_id) for product in variants | lines.product_id],
            date=fields.Date.context_today(order),
        )
        by_template = {}
        for variant in variants:
            by_template.setdefault(variant.product_tmpl_id.id, []).append(variant)
        engine = self.env["sale.order.refund.engine"]
        rounding = order.currency_id.rounding
        options = {}
        for line in lines:
            paid = line.price_unit * (1 - (line.discount or 0.0) / 100.0)
            returned = self._get_price(line, line.product_id, prices[line.product_id.id][0])
            needed = (quantities or {}).get(line.id, 1.0)
            entry = {"variants": [], "dearer": self.env["product.product"]}
            for variant in by_template.get(line.product_id.product_tmpl_id.id, []):
                price = self._get_price(line, variant, prices[variant.id][0])
                if float_compare(price, returned, precision_rounding=rounding) > 0:
                    entry["dearer"] |= variant
                    continue
                if not self._is_in_stock(variant, line, needed):
                    continue
                # What the customer paid, less today's difference between the
                # two variants (never below nothing).
                price_paid = paid - min(max(returned - price, 0.0), paid)
                entry["variants"].append(
                    {
                        "product": variant,
                        "price": price_paid,
                        "difference": order.currency_id.round(
                            engine._get_line_amount(line, 1.0)
                            - engine._get_line_amount(line, 1.0, price_paid)
                        ),
                    }
                )
            if entry["variants"] or entry["dearer"]:
                options[line.id] = entry
        return options

    @api.model
    def _filter_possible(self, variants):
        """The variants a customer could buy: Flectra's _is_variant_possible,
        which looks each variant's combination up, is asked only for
        templates with exclusions; for the others a variant is possible when
        its attribute values are all still active."""
        values = variants.product_template_attribute_value_ids
        excluding = values.filtered("exclude_for").product_tmpl_id
        return variants.filtered(
            lambda variant: (
                all(variant.product_template_attribute_value_ids.mapped("ptav_active"))
                and (variant.product_tmpl_id not in excluding or variant._is_variant_possible())
            )
        )

    @api.model
    def _get_price(self, line, variant, pricelist_price):
        """One unit of ``variant`` in ``line``'s unit, with the line's taxes."""
        order = line.order_id
        price = self.env["account.tax"]._fix_tax_included_price_company(
            pricelist_price, variant.taxes_id, line.tax_id, order.company_id
        )
        return variant.uom_id._compute_price(price, line.product_uom)

    @api.model
    def _is_in_stock(self, variant, line, quantity):
        """Whether the order's warehouse has ``quantity`` (in ``line``'s unit)
        of ``variant`` free. Consumables are always available."""
        if variant.type != "product":
            return True
        needed = line.product_uom._compute_quantity(quantity, variant.uom_id)
        return (
            float_compare(variant.free_qty, needed, precision_rounding=variant.uom_id.rounding) >= 0
        )

    @api.model
    def _prepare_line_vals(self, line, variant, quantity):
        """The request line's values of an exchange of ``quantity`` of ``line``
        for ``variant`` (product.product, maybe empty), checked: a variant of
        the same product, sold on the website, in stock, no dearer."""
        product = line.product_id.display_name
        if (
            not variant
            or variant == line.product_id
            or variant.product_tmpl_id != line.product_id.product_tmpl_id
        ):
            raise ValidationError(
                _(
                    "%s: it can only be exchanged for another size or colour of the same product.",
                    product,
                )
            )
        entry = self._get_options(line, {line.id: quantity}).get(line.id) or {}
        if variant in entry.get("dearer", []):
            raise ValidationError(
                _(
                    "%(product)s: %(variant)s costs more, so it cannot be exchanged for it.",
                    product=product,
                    variant=variant.display_name,
                )
            )
        option = next(
            (option for option in entry.get("variants", []) if option["product"] == variant),
            None,
        )
        if not option:
            raise ValidationError(
                _(
                    "%(product)s: %(variant)s is not available in that quantity: choose "
                    "another one or a refund.",
                    product=product,
                    variant=variant.display_name,
                )
            )
        return {
            "resolution": "exchange",
            "exchange_product_id": variant.id,
            "exchange_price_unit": option["price"],
            "exchange_difference": line.order_id.currency_id.round(
                self.env["sale.order.refund.engine"]._get_line_amount(line, quantity)
                - self.env["sale.order.refund.engine"]._get_line_amount(
                    line, quantity, option["price"]
                )
            ),
        }

    # ------------------------------------------------------------------
    # 3. Reserve on approval, 6. release
    # ------------------------------------------------------------------

    @api.model
    def _reserve(self, request):
        """A new delivery of ``request``'s exchange variants, reserved now,
        and the ledger lines that hold the exchanged units. Raises a
        UserError naming what cannot be reserved (nothing is kept then)."""
        request.ensure_one()
        lines = request.line_ids.filtered(lambda line: line.resolution == "exchange")
        if not lines:
            return self.env["stock.picking"]
        # Whatever a failure leaves (the procurement run, a half reserved
        # delivery) goes with it, even for a caller that catches the error.
        with self.env.cr.savepoint():
            pickings = self._create_exchange_delivery(request, lines)
        as_refund_engine(self.env["sale.order.refund.line"]).create(
            [
                {
                    "order_id": request.order_id.id,
                    "sale_line_id": line.sale_line_id.id,
                    "return_request_id": request.id,
                    "kind": "exchange",
                    "quantity": line.quantity,
                    "amount": 0.0,
                }
                for line in lines
            ]
        )
        return pickings

    @api.model
    def _create_exchange_delivery(self, request, lines):
        """The new delivery of ``lines``' variants, through the warehouse's
        routes (its pick and pack steps too), reserved; raises if it is not."""
        order = request.order_id
        # Not linked to the order (sale_id): sale_stock would add the
        # variant to the order as a line of its own when it ships, and count
        # the delivery among the order's deliveries to return from.
        group = self.env["procurement.group"].create(
            {
                "name": "%s: %s" % (request.name, order.name),
                "move_type": "direct",
                "partner_id": order.partner_shipping_id.id,
            }
        )
        Procurement = self.env["procurement.group"].Procurement
        values = {
            "group_id": group,
            "warehouse_id": order.warehouse_id,
            "partner_id": order.partner_shipping_id.id,
            "company_id": order.company_id,
        }
        self.env["procurement.group"].run(
            [
                Procurement(
                    line.exchange_product_id,
                    line.quantity,
                    line.product_uom,
                    order.partner_shipping_id.property_stock_customer,
                    line.exchange_product_id.display_name,
                    group.name,
                    order.company_id,
                    dict(values),
                )
                for line in lines
            ]
        )
        moves = self.env["stock.move"].search([("group_id", "=", group.id)])
        pickings = moves.picking_id
        pickings.write({"exchange_request_id": request.id})
        pickings.action_assign()
        # The first step of the route takes from stock: it must be reserved.
        not_reserved = moves.filtered(
            lambda move: not move.move_orig_ids and move.state != "assigned"
        ).product_id
        if not_reserved:
            raise UserError(
                _(
                    "%(name)s cannot be approved: %(products)s can no longer be reserved for "
                    "the exchange. Use Refund Instead on that line, then approve.",
                    name=request.name,
                    products=", ".join(not_reserved.mapped("display_name")),
                )
            )
        return pickings

    @api.model
    def _release(self, request):
        """Cancel ``request``'s exchange delivery and free its units in the
        ledger. A delivery already shipped cannot be taken back."""
        pickings = request.exchange_picking_ids
        shipped = pickings.filtered(
            lambda picking: picking.state == "done" and picking.location_dest_id.usage == "customer"
        )
        if shipped:
            raise UserError(
                _(
                    "The exchange of %s was already shipped: the request cannot be stopped.",
                    request.name,
                )
            )
        # A pick done already leaves the variant in the output area, to put back.
        pickings.filtered(lambda picking: picking.state != "done").action_cancel()
        as_refund_engine(
            request.refund_ledger_ids.filtered(
                lambda entry: entry.kind == "exchange" and not entry.refund_id
            )
        ).unlink()

    # ------------------------------------------------------------------
    # 4. Ship, 5. refund the difference
    # ------------------------------------------------------------------

    @api.model
    def _check_can_ship(self, pickings):
        """Refuse to ship exchange deliveries whose returned products are
        awaited, where the website ships exchanges once they are received."""
        for picking in pickings.filtered("exchange_request_id"):
            request = picking.exchange_request_id
            if (
                picking.picking_type_id.code == "outgoing"
                and request.website_id.return_exchange_shipping == "received"
                and request.state == "approved"
            ):
                raise UserError(
                    _(
                        "%(picking)s ships once the products returned with %(name)s are "
                        "received: validate their return transfer first.",
                        picking=picking.name,
                        name=request.name,
                    )
                )

    @api.model
    def _fit_to_receipt(self, request):
        """Once ``request``'s returns are closed, exchange only what came back:
        each exchange line's units in the ledger and on its delivery go down
        to what was received (a partial receipt whose rest was dropped). The
        price difference follows (see _get_differences_left)."""
        for line in request.line_ids.filtered(lambda ln: ln.resolution == "exchange"):
            received = min(line.quantity_received, line.quantity)
            entry = request.refund_ledger_ids.filtered(
                lambda e, sl=line.sale_line_id: (
                    e.kind == "exchange" and not e.refund_id and e.sale_line_id == sl
                )
            )
            rounding = line.product_uom.rounding
            if (
                not entry
                or float_compare(entry.quantity, received, precision_rounding=rounding) <= 0
            ):
                continue
            as_refund_engine(entry).write({"quantity": received})
            moves = request.exchange_picking_ids.move_lines.filtered(
                lambda m, p=line.exchange_product_id: (
                    m.product_id == p and m.state not in ("done", "cancel")
                )
            )
            for move in moves:
                qty = line.product_uom._compute_quantity(received, move.product_uom)
                move._do_unreserve()
                if float_compare(qty, 0.0, precision_rounding=move.product_uom.rounding) <= 0:
                    move._action_cancel()
                else:
                    move.product_uom_qty = qty
            moves.filtered(lambda m: m.state not in ("done", "cancel"))._action_assign()
            request.message_post(
                body=_(
                    "%(product)s: %(received)s of %(asked)s came back, so %(received)s "
                    "%(variant)s will be shipped in exchange.",
                    product=line.product_id.display_name,
                    received="%g" % received,
                    asked="%g" % line.quantity,
                    variant=line.exchange_product_id.display_name,
                ),
                subtype_xmlid="mail.mt_note",
            )

    @api.model
    def _get_differences_left(self, request):
        """The price differences of ``request``'s received exchanges not
        refunded yet: a list of {"sale_line", "quantity" (received),
        "price_unit" (the difference per unit, taxes as on the order line),
        "amount" (taxes included), "name"}."""
        refunded = {}
        for entry in (
            request.sudo()
            .refund_ledger_ids._filter_holding()
            .filtered(lambda e: e.kind == "exchange" and e.refund_id)
        ):
            refunded[entry.sale_line_id] = refunded.get(entry.sale_line_id, 0.0) + entry.amount
        currency = request.currency_id
        left = []
        for line in request.line_ids.filtered(
            lambda ln: ln.resolution == "exchange" and ln.exchange_difference > 0
        ):
            received = min(line.quantity_received, line.quantity)
            if not received:
                continue
            sale_line = line.sale_line_id
            amount = currency.round(
                line.exchange_difference * received / line.quantity - refunded.pop(sale_line, 0.0)
            )
            if currency.compare_amounts(amount, 0.0) <= 0:
                continue
            paid = sale_line.price_unit * (1 - (sale_line.discount or 0.0) / 100.0)
            left.append(
                {
                    "sale_line": sale_line,
                    # Received and not refunded yet (a partial receipt refunded before).
                    "quantity": amount * line.quantity / line.exchange_difference,
                    "price_unit": paid - line.exchange_price_unit,
                    "amount": amount,
                    "name": _(
                        "Price difference: %(product)s exchanged for %(variant)s",
                        product=line.product_id.display_name,
                        variant=line.exchange_product_id.display_name,
                    ),
                }
            )
        return left

    @api.model
    def _get_kept_amount(self, order):
        """What the variants ``order``'s customer took in exchange are worth,
        taxes included: the exchanged units' price, less the differences
        already refunded for them (a difference not refunded yet is still the
        customer's). Order refunds leave it out."""
        ledger = order.sudo().refund_ledger_ids.filtered(lambda e: e.kind == "exchange")
        units = ledger.filtered(lambda e: not e.refund_id)
        if not units:
            return 0.0
        engine = self.env["sale.order.refund.engine"]
        paid = sum(engine._get_line_amount(e.sale_line_id, e.quantity) for e in units)
        refunded = sum((ledger - units)._filter_holding().mapped("amount"))
        return max(paid - refunded, 0.0)
