import logging
from datetime import timedelta

from flectra import _, api, fields, models
from flectra.exceptions import UserError
from flectra.osv import expression
from flectra.tools import float_compare, float_is_zero, plaintext2html

from .payment_transaction import run_in_own_transaction

_logger = logging.getLogger(__name__)

# Cart changes closer together than this write the last activity once.
CART_ACTIVITY_RESOLUTION = timedelta(minutes=1)

# The three steps of the eCommerce documentation, plus the way out.
ECOMMERCE_STATUS = [
    ("quotation", "Quotation"),
    ("sent", "Quotation sent"),
    ("order", "Order"),
    ("cancel", "Cancelled"),
]
# A web order created in one of these states is placed already: its
# salesperson's turn is taken at once (website._assign_placed_orders).
PLACED_STATES = ("sent", "sale", "done")
SALE_STATE_TO_ECOMMERCE = {
    "draft": "quotation",
    "sent": "sent",
    "sale": "order",
    "done": "order",
    "cancel": "cancel",
}


class SaleOrder(models.Model):
    _inherit = "sale.order"

    # --- Order queues and statuses ---------------------------------------------
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
        help="Confirmed, but the offline payment is still pending: do not treat it as paid.",
    )

    # --- Online returns --------------------------------------------------------
    return_request_ids = fields.One2many(
        "sale.return.request", "order_id", string="Return Requests"
    )
    return_request_count = fields.Integer(compute="_compute_return_request_count")

    # --- Abandoned-cart e-mails ------------------------------------------------
    cart_last_activity = fields.Datetime(
        "Last Cart Activity",
        copy=False,
        readonly=True,
        help="Last time a product was added, removed or changed in this cart. "
        "The cart is abandoned when this is older than the website's delay.",
    )
    cart_reminder_count = fields.Integer(
        "Abandoned Cart E-mails Sent",
        default=0,
        copy=False,
        readonly=True,
        help="How many automatic abandoned cart e-mails this cart received: "
        "the first e-mail, then one per follow-up reminder.",
    )
    cart_reminder_last_sent = fields.Datetime(
        "Last Abandoned Cart E-mail",
        copy=False,
        readonly=True,
    )
    cart_reminder_error = fields.Char(
        "Abandoned Cart E-mail Error",
        copy=False,
        readonly=True,
        help="Why this cart's abandoned cart e-mail could not be built (its "
        "address or the template): it gets no more abandoned cart e-mails.",
    )

    # --- What the reminders brought back (website.cart.recovery.event) ---------
    cart_resume_click_count = fields.Integer(
        "Resume Clicks",
        default=0,
        copy=False,
        readonly=True,
        help="Clicks on the Resume your order link of this cart's abandoned cart "
        "e-mails, at most one an hour.",
    )
    cart_resume_click_last = fields.Datetime(
        "Last Resume Click",
        copy=False,
        readonly=True,
        help="The last click on the Resume your order link that was counted.",
    )
    cart_recovery_step = fields.Integer(
        "Recovered by E-mail",
        copy=False,
        readonly=True,
        help="This order was confirmed within the website's recovery window after "
        "an abandoned cart e-mail: the number of the last e-mail the cart had "
        "received (1: the first e-mail, 2: the first follow-up reminder, ...).",
    )
    cart_recovered_date = fields.Datetime(
        "Recovered on",
        copy=False,
        readonly=True,
        help="When this order, brought back by an abandoned cart e-mail, was confirmed.",
    )
    cart_recovered_cart_id = fields.Many2one(
        "sale.order",
        "Recovered Cart",
        copy=False,
        readonly=True,
        help="The e-mailed cart this order recovers: the order itself, or an "
        "earlier cart of the same customer when they came back without the link.",
    )

    # --- Refunds from the order ------------------------------------------------
    refund_ledger_ids = fields.One2many(
        "sale.order.refund.line",
        "order_id",
        readonly=True,
        copy=False,
        help="What the refunds of this order gave back, per line: the one record every "
        "refund door reads.",
    )
    refund_transaction_ids = fields.Many2many(
        "payment.transaction",
        string="Refunds",
        compute="_compute_refund_state",
    )
    online_refundable_amount = fields.Monetary(
        "Left to Refund",
        compute="_compute_refund_state",
        currency_field="currency_id",
        help="Paid online and neither refunded nor being refunded.",
    )
    can_refund_online = fields.Boolean(compute="_compute_refund_state")
    has_failed_refund = fields.Boolean(
        compute="_compute_refund_state",
        help="A refund failed: the button retries it instead of refunding anew.",
    )

    # ------------------------------------------------------------------
    # Compute and search methods
    # ------------------------------------------------------------------

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

    def _compute_return_request_count(self):
        data = self.env["sale.return.request"].read_group(
            [("order_id", "in", self.ids)], ["order_id"], ["order_id"]
        )
        counts = {row["order_id"][0]: row["order_id_count"] for row in data}
        for order in self:
            order.return_request_count = counts.get(order.id, 0)

    @api.depends("website_id", "cart_last_activity", "order_line", "state", "partner_id")
    def _compute_abandoned_cart(self):
        # Same rule as _search_abandoned_cart, measured from the last cart change.
        now = fields.Datetime.now()
        for order in self:
            website = order.website_id
            order.is_abandoned_cart = bool(
                website
                and order.state == "draft"
                and order.cart_last_activity
                and order.cart_last_activity <= now - website._get_cart_abandoned_timedelta()
                and order.partner_id != website.user_id.partner_id
                and order.order_line
            )

    def _search_abandoned_cart(self, operator, value):
        # Flectra 2.0 uses the delay of an empty recordset (so always 1 hour) and
        # one public partner for all websites: build one clause per website so
        # the menu, the sales team dashboard and the cron agree.
        now = fields.Datetime.now()
        per_website = [
            [
                ("website_id", "=", website.id),
                ("cart_last_activity", "<=", now - website._get_cart_abandoned_timedelta()),
                ("partner_id", "!=", website.user_id.partner_id.id),
            ]
            for website in self.env["website"].sudo().search([])
        ]
        domain = expression.AND(
            [
                [("state", "=", "draft"), ("order_line", "!=", False)],
                expression.OR(per_website or [expression.FALSE_DOMAIN]),
            ]
        )
        positive = (operator not in expression.NEGATIVE_TERM_OPERATORS) == bool(value)
        if positive:
            return domain
        return ["!"] + expression.normalize_domain(domain)

    @api.depends(
        "state",
        "amount_total",
        "transaction_ids.state",
        "transaction_ids.amount",
        "transaction_ids.refund_transaction_ids.state",
        "transaction_ids.refund_transaction_ids.amount",
    )
    def _compute_refund_state(self):
        for order in self:
            payments = order._get_online_payments()
            # A shared payment's refunds for other orders are theirs, not ours.
            refunds = payments.refund_transaction_ids.filtered(
                lambda r, order=order: r.refund_sale_order_id in (order, order.browse())
            )
            order.refund_transaction_ids = refunds
            order.online_refundable_amount = order._get_online_refundable_amount(payments)
            order.has_failed_refund = any(refund._is_failed_refund() for refund in refunds)
            order.can_refund_online = order.state != "cancel" and (
                order.online_refundable_amount > 0 or order.has_failed_refund
            )

    # ------------------------------------------------------------------
    # CRUD and ORM overrides
    # ------------------------------------------------------------------

    def init(self):
        res = super().init()
        # The cron and the Abandoned Carts menu look for draft web orders of one
        # website by last activity (first e-mail) or by last e-mail (follow-ups):
        # these partial indexes keep that an index range scan on a big sale_order.
        self.env.cr.execute(
            """
            CREATE INDEX IF NOT EXISTS sale_order_cart_activity_draft_index
                ON sale_order (website_id, cart_last_activity, id)
             WHERE state = 'draft' AND website_id IS NOT NULL;
            CREATE INDEX IF NOT EXISTS sale_order_cart_reminder_sent_draft_index
                ON sale_order (website_id, cart_reminder_last_sent, id)
             WHERE state = 'draft' AND cart_reminder_last_sent IS NOT NULL;
            """
        )
        # Every visit of a cart link (the e-mails' Resume your order, the
        # portal's) looks the cart up by its access token, which portal does
        # not index: without this, each anonymous click scans sale_order.
        self.env.cr.execute(
            """
            CREATE INDEX IF NOT EXISTS sale_order_wsoh_access_token_index
                ON sale_order (access_token) WHERE access_token IS NOT NULL
            """
        )
        return res

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if "transaction_ids" in vals:
                self.env["payment.transaction"]._check_order_links_unchanged(
                    self.browse(), vals["transaction_ids"]
                )
        orders = super().create(vals_list)
        # --- Assignment: an order created already placed takes its turn now.
        if any(vals.get("state") in PLACED_STATES for vals in vals_list):
            self.env["website"]._assign_placed_orders(orders)
        return orders

    def write(self, vals):
        # The same link as payment.transaction.sale_order_ids, from this side.
        if "transaction_ids" in vals:
            self.env["payment.transaction"]._check_order_links_unchanged(
                self, vals["transaction_ids"]
            )
        res = super().write(vals)
        # --- Assignment: a web order takes its salesperson's turn when it is
        # placed: Quotation sent (the payment step) here, or confirmed
        # (action_confirm), whichever comes first; never as a cart.
        if vals.get("state") == "sent":
            self.env["website"]._assign_placed_orders(self)
        return res

    # ------------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------------

    def action_confirm(self):
        res = super().action_confirm()
        # --- Assignment: once confirmed, as the confirmation's own writes may
        # need the confirming salesperson's rights on an unassigned order.
        self.env["website"]._assign_placed_orders(self)
        # Every path to a confirmed order comes here: the payment, the
        # salesperson's button, the To Confirm queue.
        self.env["website.cart.recovery.event"]._record_recoveries(self)
        return res

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
                    "Skipped, as they are no longer quotations (already confirmed or "
                    "cancelled): %s.",
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

    def action_refund(self):
        """Refund to the customer what this order paid online and has left to
        refund, with a credit note if invoiced.

        A refund of this order that failed before is retried (same idempotency
        key) rather than doubled, but only from the Retry Refund button, whose
        confirmation says so (context ``refund_retry``).
        """
        self.ensure_one()
        self.env["payment.transaction"]._check_refund_rights()
        self._check_refund_access()
        # In the order's company, as sale's invoicing: credit notes and
        # payments get its journals whichever company the user works in.
        order = self.sudo().with_company(self.company_id)
        order._check_has_payments_to_refund()
        refund_ids = run_in_own_transaction(order, "_reserve_full_refund")
        answers = order.env["payment.transaction"]._process_refunds(refund_ids)
        return order._refund_notification(answers)

    def action_retry_refund(self):
        """The Retry Refund button: send this order's failed refunds again."""
        return self.with_context(refund_retry=True).action_refund()

    def action_open_refund_wizard(self):
        """The Refund button: choose lines or an amount, and say why, before refunding."""
        self.ensure_one()
        self.env["payment.transaction"]._check_refund_rights()
        self._check_refund_access()
        order = self.sudo()
        payments = order._check_has_payments_to_refund()
        # As before the wizard existed: an acquirer that cannot refund is named at once.
        unsupported = payments.acquirer_id.filtered(lambda a: a.support_refund == "none")
        if unsupported:
            raise UserError(unsupported[0]._get_refund_unsupported_message())
        return {
            "name": _("Refund %s", order.name),
            "type": "ir.actions.act_window",
            "res_model": "sale.order.refund.wizard",
            "view_mode": "form",
            "target": "new",
            "context": {"default_order_id": self.id},
        }

    def _check_has_payments_to_refund(self):
        """Refuse an order that has nothing to refund; its online payments."""
        self.ensure_one()
        if self.state == "cancel":
            raise UserError(_("%s is cancelled: there is nothing to refund.", self.name))
        payments = self._get_online_payments()
        if not payments:
            raise UserError(_("%s was not paid online: there is no payment to refund.", self.name))
        # Every payment counts in the order's shares, the ones not refunded too.
        payments._check_capture_seal()
        return payments

    def _check_refund_access(self):
        """The refund code reads and writes in sudo: the user must at least be
        allowed to see these orders (own documents only, their companies)."""
        self.check_access_rights("read")
        self.check_access_rule("read")

    def _refund_chosen(self, line_quantities=None, amount=None, reason="", restock=False):
        """Refund what the refund wizard chose: ``line_quantities``
        ({sale.order.line: quantity}), or ``amount`` (no credit note), or,
        with neither, everything left. ``reason`` is posted as an internal
        note; ``restock`` returns the refunded stored products to stock.
        Returns the notification for the salesperson.
        """
        self.ensure_one()
        self.env["payment.transaction"]._check_refund_rights()
        self._check_refund_access()
        if not (reason or "").strip():
            raise UserError(_("Write why this order is refunded (internal note)."))
        order = self.sudo().with_company(self.company_id)
        order._check_has_payments_to_refund()
        # Plain data across transactions: the wizard itself is not committed.
        line_qty_by_id = None
        if line_quantities is not None:
            line_qty_by_id = {line.id: qty for line, qty in line_quantities.items()}
        refund_ids = run_in_own_transaction(
            order, "_reserve_chosen_refund_ids", line_qty_by_id, amount, reason.strip()
        )
        answers = order.env["payment.transaction"]._process_refunds(refund_ids)
        notification = order._refund_notification(answers)
        if (
            restock
            and answers
            and all(answer["state"] in ("pending", "done") for answer in answers)
        ):
            # The refunds were committed by transactions younger than this
            # request's: only a transaction of its own sees them.
            names = run_in_own_transaction(order, "_restock_refunds", refund_ids)
            if names:
                notification["params"]["message"] += " " + _(
                    "Return transfer created: %s.", ", ".join(names)
                )
        return notification

    def _restock_refunds(self, refund_ids):
        """Return transfers for what the refunds ``refund_ids`` gave back;
        the names of the transfers created."""
        refunds = self.env["payment.transaction"].browse(refund_ids)
        pickings = self._restock_refunded_lines(refunds._get_refund_line_quantities())
        return pickings.mapped("name")

    # ------------------------------------------------------------------
    # Business methods: online returns
    # ------------------------------------------------------------------

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

        Each entry: ``line``, ``delivered``, ``refunded`` (what the refund
        ledger gave back of it) and ``returnable`` quantities (in the line's
        unit), and ``refusal`` (why it cannot be returned, or ''). A unit
        refunded already (the customer kept it, or it came back) is never
        returned for money again.
        """
        self.ensure_one()
        since = self._get_return_window_start()
        info = []
        lines = self.order_line.filtered(lambda ln: not ln.display_type)
        # One query for the requested quantities of all lines, not one per line.
        requested = lines._get_return_requested_qties()
        refunded_qties = self._get_refunded_line_quantities()
        for line in lines:
            if line.product_id.type in ("product", "consu"):
                delivered = line._get_return_delivered_qty()
            else:
                # Services have no transfer: they are listed (disabled) as delivered by hand.
                delivered = line.qty_delivered
            if float_is_zero(delivered, precision_rounding=line.product_uom.rounding):
                continue
            refusal = line.product_id.product_tmpl_id._get_return_refusal_reason()
            refunded = refunded_qties.get(line.id, 0.0)
            returnable = (
                0.0
                if refusal
                else min(
                    line._get_returnable_qty(since=since, requested=requested.get(line.id, 0.0)),
                    line.product_uom_qty - refunded - requested.get(line.id, 0.0),
                )
            )
            rounding = line.product_uom.rounding
            if float_compare(returnable, 0.0, precision_rounding=rounding) <= 0:
                returnable = 0.0
            if not refusal and not returnable:
                if since and line._get_return_delivered_qty(since=since) <= 0:
                    refusal = _("The return period has ended.")
                elif (
                    float_compare(refunded, 0.0, precision_rounding=rounding) > 0
                    and float_compare(
                        refunded + requested.get(line.id, 0.0),
                        line.product_uom_qty,
                        precision_rounding=rounding,
                    )
                    >= 0
                ):
                    refusal = _("Already refunded.")
                else:
                    refusal = _("Everything delivered is already returned or requested.")
            info.append(
                {
                    "line": line,
                    "delivered": delivered,
                    "refunded": refunded,
                    "returnable": returnable,
                    "refusal": refusal,
                }
            )
        return info

    def _get_return_window_start(self):
        """Deliveries done before this datetime are out of the return window."""
        days = self.website_id.return_window_days
        return fields.Datetime.now() - timedelta(days=days) if days else False

    def _get_return_delivery_pickings(self):
        """Done deliveries of the order that can be returned, newest first."""
        self.ensure_one()
        pickings = self.picking_ids.filtered(
            lambda p: p.state == "done" and p.location_dest_id.usage == "customer"
        )
        return pickings.sorted(lambda p: (p.date_done, p.id), reverse=True)

    def _create_return_pickings(self, to_return):
        """Return ``{sale.order.line: quantity}`` (in the product's unit) with
        Flectra's stock return wizard.

        One return per original delivery involved; a line delivered in
        several parts is taken back from its newest deliveries first.
        Returns (the return pickings, {line: quantity left that no delivery holds}).
        """
        self.ensure_one()
        to_return = dict(to_return)
        pickings = self.env["stock.picking"]
        Wizard = self.env["stock.return.picking"]
        for picking in self._get_return_delivery_pickings():
            # The return belongs to the delivery's company, whichever one the user works in.
            wizard = (
                Wizard.with_company(picking.company_id)
                .with_context(
                    active_id=picking.id, active_ids=picking.ids, active_model="stock.picking"
                )
                .create({"picking_id": picking.id})
            )
            wizard._onchange_picking_id()
            has_quantity = False
            for wizard_line in wizard.product_return_moves:
                sale_line = wizard_line.move_id.sale_line_id
                wanted = to_return.get(sale_line, 0.0)
                qty = max(min(wanted, wizard_line.quantity), 0.0)
                wizard_line.write({"quantity": qty, "to_refund": True})
                if qty > 0:
                    to_return[sale_line] = wanted - qty
                    has_quantity = True
            if has_quantity:
                pickings |= self.env["stock.picking"].browse(wizard._create_returns()[0])
        return pickings, to_return

    def _restock_refunded_lines(self, line_qty_by_id):
        """Return transfers for the refunded stored products ({line id: quantity}),
        no more than what was delivered and is not returned (or on its way back)
        yet. Refunding never waits for it: a failure is logged on the order."""
        self.ensure_one()
        to_return = {}
        for line in self.order_line.filtered(lambda ln: ln.id in line_qty_by_id):
            if line.product_id.type != "product":
                continue
            at_customer = line._get_return_delivered_qty() - line._get_return_returned_qty()
            qty = min(line_qty_by_id[line.id], at_customer)
            qty = line.product_uom._compute_quantity(qty, line.product_id.uom_id)
            if float_compare(qty, 0.0, precision_rounding=line.product_id.uom_id.rounding) > 0:
                to_return[line] = qty
        if not to_return:
            return self.env["stock.picking"]
        try:
            with self.env.cr.savepoint():
                return self._create_return_pickings(to_return)[0]
        except Exception as error:  # pylint: disable=broad-except
            # The money went back already: the refund stands, the transfer is made by hand.
            _logger.exception("Order %s: the return transfer of a refund failed", self.id)
            self.message_post(
                body=plaintext2html(
                    _(
                        "The products refunded could not be returned to stock (%s): "
                        "create the return transfer from the delivery.",
                        error,
                    )
                ),
                subtype_xmlid="mail.mt_note",
            )
            return self.env["stock.picking"]

    def _can_request_return(self):
        """True when the "Return products" button should show on the order:
        _get_return_lines_info's rule, in one query (every view of the page)."""
        self.ensure_one()
        if self._get_return_refusal_reason():
            return False
        return self.order_line._has_returnable_qty(since=self._get_return_window_start())

    # ------------------------------------------------------------------
    # Business methods: abandoned carts
    # ------------------------------------------------------------------

    def _cart_update(self, product_id=None, line_id=None, add_qty=0, set_qty=0, **kwargs):
        values = super()._cart_update(
            product_id=product_id, line_id=line_id, add_qty=add_qty, set_qty=set_qty, **kwargs
        )
        # Even an update that changes nothing is the customer working on the cart.
        self._touch_cart_activity()
        return values

    def _touch_cart_activity(self):
        """Record that the customer worked on these draft web carts now.

        A cart touched less than a minute ago is not written again: one
        add-to-cart touches it twice (line, then cart), and the abandoned
        delay counts in hours, so the minute costs nothing but a write.
        """
        now = fields.Datetime.now()
        carts = self.filtered(
            lambda order: (
                order.website_id
                and order.state == "draft"
                and not (
                    order.cart_last_activity
                    and now - CART_ACTIVITY_RESOLUTION <= order.cart_last_activity <= now
                )
            )
        )
        if carts:
            carts.sudo().write({"cart_last_activity": now})

    def message_notify(self, **kwargs):
        # A web cart's notifications, such as the "assigned to you" e-mail to
        # the website's salesperson, leave through the mail queue: the customer
        # adding to the cart never waits for SMTP. (A caller's
        # mail_notify_force_send context still decides, as in mail: the
        # assignment of a placed order queues its e-mail that way.)
        if any(order.website_id and order.state == "draft" for order in self):
            kwargs.setdefault("force_send", False)
        return super().message_notify(**kwargs)

    def get_cart_resume_url(self):
        """The link that restores this cart in the shop (website_sale's revive flow).

        Public, as mail templates may only call public methods.
        """
        self.ensure_one()
        # revive=squash: the customer gets this cart back even if the browser holds another one.
        return "%s/shop/cart?access_token=%s&revive=squash" % (
            self.get_base_url(),
            self.access_token,
        )

    @api.model
    def _register_cart_resume_click(self, access_token):
        """A customer followed the resume link of the cart of ``access_token``:
        count it (see website.cart.recovery.event._log_resume_click)."""
        return self.env["website.cart.recovery.event"]._log_resume_click(access_token)

    def get_cart_unsubscribe_url(self):
        """The link that stops abandoned cart e-mails to this cart's address: a
        page with a confirm button, and the RFC 8058 one-click POST target.

        Public, as mail templates may only call public methods.
        """
        self.ensure_one()
        return self.env["website.abandoned.cart.mailer"]._get_unsubscribe_url(self)

    def get_cart_prices_tax_included(self):
        """Whether the shop shows its customers prices with taxes (the Accounting
        setting behind website_sale's cart), for e-mails that have no web user."""
        return (
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("account.show_line_subtotals_tax_selection", "tax_excluded")
            == "tax_included"
        )

    # ------------------------------------------------------------------
    # Business methods: refunds
    # ------------------------------------------------------------------

    def _get_online_refundable_amount(self, payments=None):
        """This order's own share of its payments that is left to refund."""
        self.ensure_one()
        if payments is None:
            payments = self._get_online_payments()
        if not payments:
            # Also a new order in a form, which has no currency yet.
            return 0.0
        return self.currency_id.round(
            sum(payment._get_order_refundable_amount(self) for payment in payments)
        )

    def _reserve_full_refund(self):
        """Lock the payments, check, and create this order's refund(s), in draft.

        Runs in a transaction of its own. Returns the refund ids.
        """
        self.ensure_one()
        payments = self._get_online_payments()
        payments._lock_for_refund()
        failed = self._get_failed_refunds()
        if failed:
            if not self.env.context.get("refund_retry"):
                self._check_no_failed_refund()
            return failed._reserve_retry()
        if self.env.context.get("refund_retry"):
            raise UserError(_("%s has no failed refund to retry: reload the order.", self.name))
        amount = self._get_online_refundable_amount(payments)
        if self.currency_id.compare_amounts(amount, 0.0) <= 0:
            raise UserError(_("%s is already fully refunded.", self.name))
        self._check_refund_allocation(payments, amount)
        credit_notes = self._create_full_refund_credit_notes()
        return self._reserve_refunds(
            payments, amount, credit_notes, self._get_refund_left_quantities()
        ).ids

    def _reserve_chosen_refund_ids(self, line_qty_by_id=None, amount=None, reason=""):
        """What the refund wizard chose (see ``_refund_chosen``), reserved in a
        transaction of its own by the refund engine. Returns the refund ids."""
        self.ensure_one()
        if line_qty_by_id is None and amount is None:
            refund_ids = self._reserve_full_refund()
        else:
            payments = self._get_online_payments()
            payments._lock_for_refund()
            self._check_no_failed_refund()
            if amount is not None:
                amount = self.currency_id.round(amount)
                if self.currency_id.compare_amounts(amount, 0.0) <= 0:
                    raise UserError(_("The amount to refund must be positive."))
                # An amount is money given back, not lines: no credit note.
                self._check_refund_allocation(payments, amount)
                refund_ids = self._reserve_refunds(payments, amount, self.env["account.move"]).ids
            else:
                line_quantities = {
                    self.env["sale.order.line"].browse(line_id): qty
                    for line_id, qty in line_qty_by_id.items()
                    if qty
                }
                self._check_refund_left_quantities(line_quantities)
                refund_ids = self._reserve_refund_lines(line_quantities).ids
        refunds = self.env["payment.transaction"].browse(refund_ids)
        self.message_post(
            body=plaintext2html(
                _(
                    "Refund %(refs)s, reason (internal, not sent to the customer): %(reason)s",
                    refs=", ".join(refunds.mapped("reference")),
                    reason=reason,
                )
            ),
            subtype_xmlid="mail.mt_note",
        )
        return refund_ids

    def _check_no_failed_refund(self):
        failed = self._get_failed_refunds()
        if failed:
            raise UserError(
                _(
                    "A refund of %(order)s failed before (%(refs)s). Reload the order and "
                    "use Retry Refund: it sends that same refund again instead of a new one.",
                    order=self.name,
                    refs=", ".join(failed.mapped("reference")),
                )
            )

    def _get_refunded_line_quantities(self):
        """{sale.order.line id: quantity} refunded, being refunded or failed
        (held until retried or cancelled): the refund ledger's."""
        self.ensure_one()
        return self.sudo().refund_ledger_ids._filter_holding()._get_quantities()

    def _get_refund_left_quantities(self):
        """{sale.order.line: quantity} not refunded yet, for every product line."""
        self.ensure_one()
        refunded = self._get_refunded_line_quantities()
        left = {}
        for line in self.order_line.filtered(lambda ln: not ln.display_type):
            qty = line.product_uom_qty - refunded.get(line.id, 0.0)
            if float_compare(qty, 0.0, precision_rounding=line.product_uom.rounding) > 0:
                left[line] = qty
        return left

    def _check_refund_left_quantities(self, line_quantities):
        left = self._get_refund_left_quantities()
        for line, qty in line_quantities.items():
            if (
                float_compare(
                    qty, left.get(line, 0.0), precision_rounding=line.product_uom.rounding
                )
                > 0
            ):
                raise UserError(
                    _(
                        "Cannot refund %(qty)s of %(product)s: only %(left)s of it is left "
                        "to refund.",
                        qty=qty,
                        product=line.product_id.display_name,
                        left=left.get(line, 0.0),
                    )
                )

    def _get_failed_refunds(self):
        """This order's refunds that failed and hold their amount until retried."""
        self.ensure_one()
        return self.refund_transaction_ids.filtered(lambda r: r._is_failed_refund())

    def _refund_lines(self, line_quantities, description=None):
        """Refund ``{sale.order.line: quantity}`` of this order, taxes included.

        For returns: needs an acquirer able to refund part of a payment. When
        the order is invoiced, a credit note of those lines is posted and
        reconciled with the refund. Returns the refund transaction(s); a
        refund the acquirer refused is returned in state error, to retry.
        """
        self.ensure_one()
        # In the order's company, as sale's invoicing: credit notes and
        # payments get its journals whichever company the user works in.
        order = self.sudo().with_company(self.company_id)
        refund_ids = run_in_own_transaction(
            order, "_reserve_refund_line_ids", line_quantities, description
        )
        order.env["payment.transaction"]._process_refunds(refund_ids)
        return self.env["payment.transaction"].sudo().browse(refund_ids)

    def _reserve_refund_line_ids(self, line_quantities, description=None):
        line_quantities = {line.with_env(self.env): qty for line, qty in line_quantities.items()}
        return self._reserve_refund_lines(line_quantities, description).ids

    def _reserve_refund_lines(self, line_quantities, description=None, return_request=None):
        """Lock, check, and create the refund(s) of these lines, in draft.
        ``return_request``: the request they pay back, recorded in the ledger."""
        self.ensure_one()
        order = self.sudo()
        line_quantities = {line.sudo(): qty for line, qty in line_quantities.items() if qty}
        for line, qty in line_quantities.items():
            if line.order_id != order or line.display_type:
                raise UserError(_("%s is not a product line of this order.", line.name))
            rounding = line.product_uom.rounding
            if qty < 0 or float_compare(qty, line.product_uom_qty, precision_rounding=rounding) > 0:
                raise UserError(
                    _(
                        "Cannot refund %(qty)s of %(product)s: the order has %(ordered)s.",
                        qty=qty,
                        product=line.product_id.display_name,
                        ordered=line.product_uom_qty,
                    )
                )
        if not line_quantities:
            raise UserError(_("Choose at least one line to refund."))
        # Whichever door: a unit the ledger holds as refunded never goes twice.
        order._check_refund_left_quantities(line_quantities)
        payments = order._get_online_payments()
        if order.state == "cancel" or not payments:
            raise UserError(_("%s was not paid online: there is no payment to refund.", order.name))
        payments._lock_for_refund()
        payments._check_capture_seal()
        for acquirer in payments.acquirer_id:
            if acquirer.support_refund != "partial":
                raise UserError(
                    _(
                        "%(acquirer)s cannot refund part of a payment. %(how)s",
                        acquirer=acquirer.name,
                        how=acquirer._get_refund_unsupported_message(),
                    )
                )
        # Order-level discounts (coupons, global discount lines) are shared out.
        line_quantities = order._add_refund_discount_lines(line_quantities)
        amount = sum(
            order._get_refund_line_amount(line, qty) for line, qty in line_quantities.items()
        )
        order._check_refund_allocation(payments, amount)
        credit_notes = self.env["account.move"]
        if order._get_posted_invoices():
            credit_notes = order._create_refund_credit_note(line_quantities, description)
            # What the customer is owed is what the credit note says, to the cent.
            amount = sum(credit_notes.mapped("amount_total"))
            order._check_refund_allocation(payments, amount)
        return order._reserve_refunds(
            payments, amount, credit_notes, line_quantities, return_request
        )

    def _get_online_payments(self):
        """Captured online payments of the order (refunds excluded), oldest first."""
        self.ensure_one()
        return (
            self.sudo()
            .transaction_ids.filtered(lambda tx: tx.state == "done" and not tx.is_refund)
            .sorted("id")
        )

    def _get_posted_invoices(self):
        return self.invoice_ids.filtered(
            lambda move: move.move_type == "out_invoice" and move.state == "posted"
        )

    def _get_refund_discount_lines(self):
        """Order-level discount lines: negative product lines (sale_coupon's
        reward lines, a global discount line)."""
        self.ensure_one()
        return self.order_line.filtered(
            lambda line: not line.display_type and line.price_subtotal < 0
        )

    def _add_refund_discount_lines(self, line_quantities):
        """``line_quantities`` plus each order-level discount line's share.

        A discount line discounts the product lines that carry its taxes
        (sale_coupon makes one reward line per set of taxes, as invoicing
        keeps them): refunding some of those lines gives back the same part
        of the discount, by untaxed amount. A discount line whose taxes no
        line carries is shared over every product line.
        """
        self.ensure_one()
        discounts = self._get_refund_discount_lines()
        if not discounts:
            return line_quantities
        result = dict(line_quantities)
        products = self.order_line.filtered(
            lambda line: not line.display_type and line.price_subtotal > 0
        )
        for discount in discounts.filtered(lambda line: line not in line_quantities):
            base = products.filtered(lambda line, d=discount: line.tax_id == d.tax_id) or products
            base_total = sum(base.mapped("price_subtotal"))
            if not base_total:
                continue
            refunded = sum(
                line.price_subtotal * qty / line.product_uom_qty
                for line, qty in line_quantities.items()
                if line in base and line.product_uom_qty
            )
            if refunded:
                result[discount] = discount.product_uom_qty * refunded / base_total
        return result

    def _get_refund_line_amount(self, line, quantity):
        """What ``quantity`` of ``line`` cost the customer, taxes included."""
        price = line.price_unit * (1 - (line.discount or 0.0) / 100.0)
        taxes = line.tax_id.compute_all(
            price,
            line.order_id.currency_id,
            quantity,
            product=line.product_id,
            partner=line.order_id.partner_shipping_id,
        )
        return taxes["total_included"]

    def _allocate_refund(self, payments, amount):
        """Split ``amount`` over this order's shares of the payments, oldest
        first: [(payment, part)]."""
        allocation, left = [], amount
        for payment in payments:
            part = min(left, payment._get_order_refundable_amount(self))
            if self.currency_id.compare_amounts(part, 0.0) > 0:
                allocation.append((payment, self.currency_id.round(part)))
                left -= part
        if self.currency_id.compare_amounts(left, 0.0) > 0:
            raise UserError(
                _(
                    "Cannot refund %(amount)s on %(order)s: only %(left)s paid online is left "
                    "to refund.",
                    amount=self.currency_id.round(amount),
                    order=self.name,
                    left=self._get_online_refundable_amount(payments),
                )
            )
        return allocation

    def _check_refund_allocation(self, payments, amount):
        # Every check runs before anything is created or sent.
        for payment, part in self._allocate_refund(payments, amount):
            payment._check_refundable(part, self)

    def _reserve_refunds(
        self, payments, amount, credit_notes, line_quantities=None, return_request=None
    ):
        """One refund per payment share. The first writes the refund ledger of
        them all (``line_quantities``, {sale.order.line: quantity}, with their
        amounts, or else the amount alone), so that it counts once."""
        refunds = self.env["payment.transaction"]
        ledger = self.env["sale.order.refund.line"]._prepare_lines(
            self, line_quantities, amount, return_request
        )
        for payment, part in self._allocate_refund(payments, amount):
            refunds |= payment._reserve_refund(part, credit_notes, self, [] if refunds else ledger)
        return refunds

    def _create_full_refund_credit_notes(self):
        """Draft credit notes for what is invoiced and not credited yet.

        They are posted only when the acquirer accepts the refund.
        """
        invoices = self._get_posted_invoices()
        if not invoices:
            return self.env["account.move"]
        credited = self.invoice_ids.filtered(
            lambda move: move.move_type == "out_refund" and move.state != "cancel"
        )
        if not credited:
            today = fields.Date.context_today(self)
            return invoices._reverse_moves(
                [
                    {"ref": _("Refund of %s", invoice.name), "invoice_date": today, "date": today}
                    for invoice in invoices
                ]
            )
        # Part of it was credited already (a return): credit the rest by line.
        quantities = {
            line: line.qty_invoiced
            for line in self.order_line
            if not line.display_type and line.qty_invoiced > 0
        }
        if not quantities:
            return self.env["account.move"]
        return self._create_refund_credit_note(quantities)

    def _create_refund_credit_note(self, line_quantities, description=None):
        self.ensure_one()
        vals = self._prepare_refund_credit_note_vals(line_quantities, description)
        return self.env["account.move"].with_context(default_move_type="out_refund").create(vals)

    def _prepare_refund_credit_note_vals(self, line_quantities, description=None):
        vals = self._prepare_invoice()
        vals.update(
            {
                "move_type": "out_refund",
                "ref": description or _("Refund of %s", self.name),
                "invoice_date": fields.Date.context_today(self),
                # Linked to the original payments, posting would try to reconcile
                # them with the credit note: the refund payment is its match.
                "transaction_ids": [(5, 0, 0)],
                "invoice_line_ids": [
                    (0, 0, line._prepare_invoice_line(quantity=qty))
                    for line, qty in line_quantities.items()
                ],
            }
        )
        return vals

    def _refund_notification(self, answers):
        """Tell the salesperson what the acquirer answered, then reload the order.

        ``answers``: what ``_process_refunds`` returned (the refunds themselves
        were committed by other transactions than this request's).
        """
        states = {answer["state"] for answer in answers}
        if "error" in states:
            kind, title = "danger", _("Refund failed")
            message = "\n".join(a["message"] for a in answers if a["state"] == "error")
        elif "pending" in states:
            kind, title = "warning", _("Refund pending")
            message = _("The refund waits for the acquirer or accounting to pay it.")
        elif states <= {"done"}:
            kind, title = "success", _("Refunded")
            message = _("The customer has been refunded.")
        else:
            kind, title = "warning", _("Refund in progress")
            message = _("The acquirer has not answered yet: reload the order in a moment.")
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": title,
                "message": message,
                "type": kind,
                "sticky": kind == "danger",
                "next": {"type": "ir.actions.act_window_close"},
            },
        }

    def _send_refund_mail(self, refund):
        template = self.env.ref(
            "website_sale_order_handling.mail_template_refund", raise_if_not_found=False
        )
        if not template:
            return
        for order in self:
            order.with_context(
                refund_amount=-refund.amount, refund_pending=refund.state == "pending"
            ).message_post_with_template(
                template.id,
                composition_mode="comment",
                email_layout_xmlid="mail.mail_notification_light",
            )
