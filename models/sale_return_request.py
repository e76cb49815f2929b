import math
import re
from datetime import timedelta

import psycopg2

from flectra import _, api, fields, models
from flectra.addons.phone_validation.tools import phone_validation
from flectra.exceptions import AccessError, UserError, ValidationError
from flectra.tools import float_compare, float_is_zero

from .refund_engine import as_refund_engine, is_refund_engine

STATES = [
    ("requested", "Requested"),
    ("approved", "Approved"),
    ("received", "Received"),
    ("refunded", "Refunded"),
    # Received, and nothing to refund: every product was exchanged at its price.
    ("exchanged", "Exchanged"),
    ("rejected", "Rejected"),
    ("cancelled", "Cancelled"),
]
# Requests in these states still hold quantities or may still move money.
OPEN_STATES = ("requested", "approved", "received")
# Written by the request's own actions and the refund code only.
REQUEST_REFUND_FIELDS = frozenset({"state", "refund_transaction_ids"})
# What an exchange refunds and ships: written by the form's checks and the
# request's own actions only.
LINE_EXCHANGE_FIELDS = frozenset(
    {"resolution", "exchange_product_id", "exchange_price_unit", "exchange_difference"}
)


class SaleReturnRequest(models.Model):
    _name = "sale.return.request"
    _description = "Return Request"
    _inherit = ["portal.mixin", "mail.thread", "mail.activity.mixin"]
    _order = "id desc"

    # Longest comment a customer may type on the online form.
    _COMMENT_MAX_LENGTH = 1000
    # Longest note a customer may type for one product of the form.
    _NOTE_MAX_LENGTH = 500
    # Requests a single order may receive per hour, against scripted floods.
    _MAX_REQUESTS_PER_HOUR = 5

    name = fields.Char(string="Reference", required=True, readonly=True, copy=False, default="/")
    order_id = fields.Many2one(
        "sale.order", required=True, readonly=True, index=True, ondelete="restrict"
    )
    partner_id = fields.Many2one(
        "res.partner", string="Customer", required=True, readonly=True, index=True
    )
    commercial_partner_id = fields.Many2one(
        related="partner_id.commercial_partner_id", store=True, index=True
    )
    # The order's company, website and currency, computed from the order the
    # request belongs to (set once, at creation) and not related to the
    # order's own fields: a related field, stored or not, makes the ORM look
    # the order's requests up on every write of those fields of any order
    # (the cart's pricelist at checkout, for instance). Stored where a record
    # rule (company_id) or the Returns Analysis (both) reads them; computed in
    # sudo, as related fields are (a salesperson may see a request of another
    # salesperson's order).
    company_id = fields.Many2one(
        "res.company", compute="_compute_order_values", store=True, index=True
    )
    website_id = fields.Many2one(
        "website",
        compute="_compute_order_values",
        store=True,
        help="Website through which this order was placed.",
    )
    currency_id = fields.Many2one("res.currency", compute="_compute_currency_id", compute_sudo=True)
    user_id = fields.Many2one(
        "res.users",
        string="Responsible",
        tracking=True,
        default=lambda self: self.env["res.users"],
    )
    state = fields.Selection(
        STATES,
        default="requested",
        required=True,
        readonly=True,
        copy=False,
        tracking=True,
        index=True,
    )
    line_ids = fields.One2many(
        "sale.return.request.line", "request_id", string="Products", readonly=True
    )
    # Each line has its own reason: this is their summary, for lists and searches.
    reason_ids = fields.Many2many(
        "sale.return.reason",
        string="Reasons",
        compute="_compute_reason_ids",
        search="_search_reason_ids",
    )
    comment = fields.Text(string="Customer Comment", readonly=True)
    phone = fields.Char(string="Contact Phone", readonly=True)
    reject_reason = fields.Text(readonly=True, tracking=True)
    # The hidden nonce of the online form: a second submission of the same
    # form finds the request the first one created instead of adding one.
    submission_token = fields.Char(readonly=True, copy=False, groups="base.group_user")
    picking_ids = fields.One2many(
        "stock.picking", "return_request_id", string="Return Transfers", readonly=True
    )
    picking_count = fields.Integer(compute="_compute_picking_count")
    exchange_picking_ids = fields.One2many(
        "stock.picking",
        "exchange_request_id",
        string="Exchange Deliveries",
        readonly=True,
        help="The deliveries of the variants the customer takes in exchange.",
    )
    exchange_picking_count = fields.Integer(compute="_compute_picking_count")
    has_exchange = fields.Boolean(compute="_compute_has_exchange")
    is_partially_received = fields.Boolean(compute="_compute_is_partially_received")
    refund_amount = fields.Monetary(
        compute="_compute_refund_amount",
        currency_field="currency_id",
        help="Amount of the received products, taxes included.",
    )
    refund_transaction_ids = fields.Many2many(
        "payment.transaction",
        string="Refund Transactions",
        readonly=True,
        copy=False,
    )
    refund_ledger_ids = fields.One2many(
        "sale.order.refund.line",
        "return_request_id",
        readonly=True,
    )
    has_failed_refund = fields.Boolean(
        compute="_compute_has_failed_refund",
        help="Its refund failed: the button retries it instead of refunding anew.",
    )

    _sql_constraints = [
        (
            "submission_token_uniq",
            "UNIQUE(order_id, submission_token)",
            "This return form was already submitted.",
        ),
    ]

    def _compute_access_url(self):
        res = super()._compute_access_url()
        for request in self:
            request.access_url = "/my/returns/%s" % request.id
        return res

    @api.depends("order_id")
    def _compute_order_values(self):
        for request in self:
            request.company_id = request.order_id.company_id
            request.website_id = request.order_id.website_id

    @api.depends("order_id")
    def _compute_currency_id(self):
        for request in self:
            request.currency_id = request.order_id.currency_id

    @api.depends("line_ids.reason_id")
    def _compute_reason_ids(self):
        for request in self:
            request.reason_ids = request.line_ids.reason_id

    def _search_reason_ids(self, operator, value):
        return [("line_ids.reason_id", operator, value)]

    @api.depends("picking_ids", "exchange_picking_ids")
    def _compute_picking_count(self):
        for request in self:
            request.picking_count = len(request.picking_ids)
            request.exchange_picking_count = len(request.exchange_picking_ids)

    @api.depends("line_ids.resolution")
    def _compute_has_exchange(self):
        for request in self:
            request.has_exchange = "exchange" in request.line_ids.mapped("resolution")

    @api.depends("state", "line_ids.quantity_received")
    def _compute_is_partially_received(self):
        for request in self:
            request.is_partially_received = request.state == "approved" and any(
                line.quantity_received > 0 for line in request.line_ids
            )

    # Not on the refunds' state: payment.transaction.write drops it from the
    # cache (every payment's state change would look the requests up).
    @api.depends("refund_transaction_ids")
    def _compute_has_failed_refund(self):
        for request in self:
            request.has_failed_refund = any(
                refund._is_failed_refund() for refund in request.sudo().refund_transaction_ids
            )

    @api.depends("line_ids.quantity_received")
    def _compute_refund_amount(self):
        for request in self:
            request.refund_amount = request._get_refund_amount()

    @api.model_create_multi
    def create(self, vals_list):
        # Requests come from the customer's online form only, through
        # _create_from_portal, which checks the whole return policy.
        sets_refund_fields = any(
            vals.get(field) for vals in vals_list for field in REQUEST_REFUND_FIELDS
        )
        if not self.env.context.get("return_request_from_portal") or (
            sets_refund_fields and not is_refund_engine(self.env)
        ):
            raise AccessError(
                _("Return requests are created by customers from the online return form.")
            )
        for vals in vals_list:
            if vals.get("name", "/") == "/":
                vals["name"] = self.env["ir.sequence"].next_by_code("sale.return.request") or "/"
        return super().create(vals_list)

    def write(self, vals):
        # Its state decides whether a refund may be made: only this code moves it.
        if REQUEST_REFUND_FIELDS.intersection(vals) and not is_refund_engine(self.env):
            raise AccessError(
                _("Return requests change state with their buttons only (Approve, Refund...).")
            )
        return super().write(vals)

    # ------------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------------
    def action_approve(self):
        for request in self:
            request._check_state("requested")
            # Approving is a sales decision; the return transfer it implies is
            # created even when the approver has no inventory rights.
            request.sudo()._fit_to_what_is_left()
            request.sudo()._create_return_pickings()
            self.env["sale.return.exchange"].sudo().with_company(request.company_id)._reserve(
                request.sudo()
            )
        self._set_state("approved")
        return True

    def action_reject_wizard(self):
        self.ensure_one()
        self._check_state("requested", "approved")
        return {
            "name": _("Reject Return Request"),
            "type": "ir.actions.act_window",
            "res_model": "sale.return.request.reject",
            "view_mode": "form",
            "target": "new",
            "context": {"default_request_id": self.id},
        }

    def action_reject(self, reason):
        if not (reason or "").strip():
            raise UserError(_("Please give the customer a reason for the rejection."))
        for request in self:
            request._check_state("requested", "approved")
            request.sudo()._cancel_open_pickings()
            self.env["sale.return.exchange"].sudo()._release(request.sudo())
        self.write({"reject_reason": reason.strip()})
        self._set_state("rejected")
        return True

    def action_cancel(self):
        for request in self:
            request._check_state("requested", "approved")
            request.sudo()._cancel_open_pickings()
            self.env["sale.return.exchange"].sudo()._release(request.sudo())
        self._set_state("cancelled")
        return True

    def action_refund(self):
        """Refund the received quantities through the refund engine.

        The request is Refunded once the acquirer accepted the refund (done, or
        pending while accounting pays it). A refund the acquirer refused stays
        on the request in error: Retry Refund (context ``refund_retry``) sends
        that same refund again, with its idempotency key, instead of a second.
        """
        self.ensure_one()
        engine = self.env["sale.order.refund.engine"]
        result = engine._refund(self, retry=bool(self.env.context.get("refund_retry")))
        return engine._notification(result)

    def action_retry_refund(self):
        """The Retry Refund button: send this request's failed refund again."""
        return self.with_context(refund_retry=True).action_refund()

    def _settle_without_refund(self):
        """Nothing of this request is left to refund, says the ledger: either
        its own refund went through (only a follow-up failed, an e-mail say)
        and it is Refunded now, or other refunds of the order gave these
        products back already, and the salesperson is told which."""
        accepted = self.refund_transaction_ids.filtered(lambda r: r.state in ("pending", "done"))
        if accepted:
            self._set_state("refunded")
            self.message_post(
                body=_(
                    "Refunded by %s: nothing was sent again.",
                    ", ".join(accepted.mapped("reference")),
                )
            )
            return []
        others = self._get_refunds_of_its_lines()
        raise UserError(
            _(
                "Nothing of %(name)s is left to refund: the order's refunds %(refs)s already "
                "gave these products back. Cancel the request if the products stay with "
                "the customer.",
                name=self.name,
                refs=", ".join(others.mapped("reference")) or "-",
            )
        )

    def _get_refunds_of_its_lines(self):
        """The order's refunds that hold products of this request's lines."""
        self.ensure_one()
        return (
            self.order_id.refund_ledger_ids._filter_holding()
            .filtered(lambda entry: entry.sale_line_id in self.line_ids.sale_line_id)
            .refund_id
        )

    def _on_refund_accepted(self):
        """Called by the refund code once a refund of these requests was accepted.
        A refund given up (cancelled) before does not keep it from Refunded."""
        for request in self.filtered(lambda r: r.state == "received"):
            refunds = request.refund_transaction_ids.filtered(lambda r: r.state != "cancel")
            if refunds and all(refund.state in ("done", "pending") for refund in refunds):
                request._set_state("refunded")

    def _get_refund_line_quantities(self):
        """{sale.order.line: quantity} the customer gets their money back for
        now: received, and not refunded yet (by this request or otherwise)."""
        self.ensure_one()
        per_line = {line: line._get_refund_quantity() for line in self.line_ids}
        quantities = {}
        for line, qty in per_line.items():
            if qty > 0:
                quantities[line.sale_line_id] = quantities.get(line.sale_line_id, 0.0) + qty
        return quantities

    def action_view_pickings(self):
        self.ensure_one()
        return self._get_pickings_action(self.picking_ids)

    def action_view_exchange_pickings(self):
        self.ensure_one()
        return self._get_pickings_action(self.exchange_picking_ids)

    def _get_pickings_action(self, pickings):
        action = self.env["ir.actions.actions"]._for_xml_id("stock.action_picking_tree_all")
        action["domain"] = [("id", "in", pickings.ids)]
        action["context"] = {"create": False}
        if len(pickings) == 1:
            action["views"] = [(False, "form")]
            action["res_id"] = pickings.id
        return action

    # ------------------------------------------------------------------
    # Business methods
    # ------------------------------------------------------------------
    def _check_state(self, *states):
        # Every action changes the request: who may not edit it may not act on
        # it, before anything is done in sudo (return transfers, refunds).
        self.check_access_rights("write")
        self.check_access_rule("write")
        for request in self:
            if request.state not in states:
                raise UserError(
                    _(
                        "Return request %(name)s is %(state)s: this action is not possible.",
                        name=request.name,
                        state=dict(request._fields["state"]._description_selection(self.env))[
                            request.state
                        ],
                    )
                )

    def _set_state(self, state):
        as_refund_engine(self).write({"state": state})
        self._notify_customer()

    def _get_state_mail_template(self):
        self.ensure_one()
        return self.env.ref(
            "website_sale_order_handling.mail_template_return_%s" % self.state,
            raise_if_not_found=False,
        )

    def _notify_customer(self):
        """Email the customer the template of the request's current state."""
        for request in self:
            template = request._get_state_mail_template()
            if template:
                request.message_post_with_template(
                    template.id,
                    composition_mode="comment",
                    # Approved: the layout adds the button that prints the slip.
                    email_layout_xmlid="website_sale_order_handling.mail_notification_return_slip"
                    if request.state == "approved"
                    else "mail.mail_notification_light",
                )

    def _get_return_slip_refusal(self):
        """Why this request has no return slip, or '': the slip goes in the
        parcel, which is awaited once the request is approved."""
        self.ensure_one()
        if self.state != "approved":
            return _(
                "%s has no return slip: it is printed once the request is approved, "
                "until its products arrive.",
                self.name,
            )
        return ""

    def _get_return_address(self):
        """Where the customer sends the parcel: the warehouse of its return
        transfer, else the company."""
        self.ensure_one()
        pickings = self.sudo().picking_ids
        waiting = pickings.filtered(lambda picking: picking.state not in ("done", "cancel"))
        warehouse = (waiting or pickings)[:1].picking_type_id.warehouse_id
        return warehouse.partner_id or self.company_id.partner_id

    def _get_report_base_filename(self):
        self.ensure_one()
        return _("Return Slip %s", self.name)

    def _get_refund_amount(self):
        """Amount of the received products, taxes and the share of order-level
        discounts included: what its refunds gave back, plus what is left to
        refund."""
        self.ensure_one()
        engine = self.env["sale.order.refund.engine"]
        refunded = sum(self.sudo().refund_ledger_ids._filter_holding().mapped("amount"))
        left = sum(
            engine._get_line_amount(line, qty)
            for line, qty in engine._add_discount_shares(
                self.order_id, self._get_refund_line_quantities()
            ).items()
        )
        differences = self.env["sale.return.exchange"]._get_differences_left(self)
        total = refunded + left + sum(entry["amount"] for entry in differences)
        return self.currency_id.round(total) if self.currency_id else total

    def _create_return_pickings(self):
        """Return the requested quantities with the stock return wizard (see
        ``stock.picking._create_sale_returns``)."""
        self.ensure_one()
        to_return = {}
        for line in self.line_ids:
            sale_line = line.sale_line_id
            qty = sale_line.product_uom._compute_quantity(
                line.quantity, sale_line.product_id.uom_id
            )
            to_return[sale_line] = to_return.get(sale_line, 0.0) + qty
        pickings, not_returned = self.env["stock.picking"]._create_sale_returns(
            self.order_id, to_return
        )
        for picking in pickings:
            # The slip's number, typed or scanned in the Inventory search (by
            # reference or source document), finds this transfer.
            picking.write(
                {
                    "return_request_id": self.id,
                    "origin": "%s: %s" % (self.name, picking.origin)
                    if picking.origin
                    else self.name,
                }
            )
        for sale_line, qty in not_returned.items():
            if float_compare(qty, 0.0, precision_rounding=sale_line.product_id.uom_id.rounding) > 0:
                raise UserError(
                    _(
                        "%(product)s: the deliveries of order %(order)s do not hold enough "
                        "quantity to return.",
                        product=sale_line.product_id.display_name,
                        order=self.order_id.name,
                    )
                )

    def _fit_to_what_is_left(self):
        """Approve only what is still the customer's to return for money.

        Since the customer asked, the Refund window may have refunded some of
        these products (with Return to Stock, taking them back too), or other
        requests claimed them: each line keeps no more than is still at the
        customer, not coming back, and not refunded or claimed by another open
        request. The salesperson is told what changed; with nothing left, the
        request cannot be approved and says why.
        """
        self.ensure_one()
        order = self.order_id
        # What the refund doors reserve is read under their lock.
        payments = order._get_online_payments()
        self.env["sale.order.refund.engine"]._lock_payments(payments)
        if payments and order.currency_id.is_zero(order._get_online_refundable_amount(payments)):
            raise UserError(
                _(
                    "Nothing of %(name)s is left to refund: the payments of %(order)s were "
                    "refunded since it was asked. Reject or cancel the request.",
                    name=self.name,
                    order=order.name,
                )
            )
        left_to_refund = self.env["sale.order.refund.line"]._get_left_quantities(order)
        others = self.search(
            [
                ("order_id", "=", order.id),
                ("state", "in", ("approved", "received")),
                ("id", "!=", self.id),
            ]
        )
        claimed = {}
        # An approved exchange is in the ledger already (left_to_refund).
        for line in others.line_ids.filtered(lambda ln: ln.resolution != "exchange"):
            # A received request refunds what came back; an approved one, what is coming.
            expected = line.quantity
            if line.request_id.state == "received":
                expected = min(line.quantity, line.quantity_received)
            qty = max(expected - line.quantity_refunded, 0.0)
            claimed[line.sale_line_id] = claimed.get(line.sale_line_id, 0.0) + qty
        changes, new_quantities = [], {}
        for sale_line in self.line_ids.sale_line_id:
            rounding = sale_line.product_uom.rounding
            at_customer = (
                sale_line._get_return_delivered_qty() - sale_line._get_return_returned_qty()
            )
            money_left = left_to_refund.get(sale_line, 0.0) - claimed.get(sale_line, 0.0)
            approvable = max(min(at_customer, money_left), 0.0)
            lines = self.line_ids.filtered(lambda ln, sl=sale_line: ln.sale_line_id == sl)
            asked = sum(lines.mapped("quantity"))
            if float_compare(asked, approvable, precision_rounding=rounding) <= 0:
                continue
            changes.append((sale_line, asked, approvable))
            for line in lines.sorted("id"):
                keep = min(line.quantity, approvable)
                approvable -= keep
                new_quantities[line] = (
                    0.0 if float_is_zero(keep, precision_rounding=rounding) else keep
                )
        if not changes:
            return
        refunds = self._get_refunds_of_its_lines()
        summary = "; ".join(
            _(
                "%(product)s: %(asked)s asked, %(left)s left",
                product=sale_line.product_id.display_name,
                asked="%g" % asked,
                left="%g" % approvable,
            )
            for sale_line, asked, approvable in changes
        )
        if all(new_quantities.get(line, line.quantity) == 0.0 for line in self.line_ids):
            raise UserError(
                _(
                    "Nothing of %(name)s is left to return: since it was asked, these products "
                    "were refunded (%(refs)s) or are already coming back (%(summary)s). Reject "
                    "or cancel the request.",
                    name=self.name,
                    refs=", ".join(refunds.mapped("reference")) or "-",
                    summary=summary,
                )
            )
        for line, qty in new_quantities.items():
            if not qty:
                line.unlink()
                continue
            vals = {"quantity": qty}
            if line.resolution == "exchange":
                # The difference the customer gets back follows the quantity.
                vals["exchange_difference"] = self.currency_id.round(
                    line.exchange_difference * qty / line.quantity
                )
            as_refund_engine(line).write(vals)
        self.message_post(
            body=_(
                "Approved for what is left: since it was asked, some of these products were "
                "refunded (%(refs)s) or are already coming back (%(summary)s).",
                refs=", ".join(refunds.mapped("reference")) or "-",
                summary=summary,
            ),
            subtype_xmlid="mail.mt_note",
        )

    def _cancel_open_pickings(self):
        pickings = self.picking_ids.filtered(lambda p: p.state not in ("done", "cancel"))
        if self.picking_ids.filtered(lambda p: p.state == "done"):
            raise UserError(
                _(
                    "Products of %s were already received back: the request cannot be stopped.",
                    self.name,
                )
            )
        pickings.action_cancel()

    def _update_from_receipts(self):
        """Called when return transfers are validated.

        The request is Received once none of its transfers is still open
        (a partial receipt whose remainder was dropped included); while a
        backorder waits it stays Approved, shown as partially received.
        """
        for request in self.filtered(lambda r: r.state == "approved"):
            if any(p.state not in ("done", "cancel") for p in request.picking_ids):
                continue
            if any(line.quantity_received > 0 for line in request.line_ids):
                self.env["sale.return.exchange"]._fit_to_receipt(request)
                # Only exchanges at their price: nothing for the Refund button.
                exchanged_only = request.has_exchange and not request._get_money_left()
                request._set_state("exchanged" if exchanged_only else "received")

    def _get_money_left(self):
        """Whether a refund of this request has anything to give back: received
        products returned for money, or an exchange's price difference."""
        self.ensure_one()
        return bool(
            self._get_refund_line_quantities()
            or self.env["sale.return.exchange"]._get_differences_left(self)
        )

    # ------------------------------------------------------------------
    # Creation from the online form
    # ------------------------------------------------------------------
    @api.model
    def _get_max_requests_per_hour(self):
        return int(
            self.env["ir.config_parameter"]
            .sudo()
            .get_param(
                "website_sale_order_handling.return_max_requests_per_hour",
                self._MAX_REQUESTS_PER_HOUR,
            )
        )

    @api.model
    def _normalize_return_phone(self, phone, order):
        """The phone in international format for the customer's country."""
        phone = (phone or "").strip()
        if not phone:
            return False
        country = order.partner_id.country_id or order.company_id.country_id
        try:
            return phone_validation.phone_format(
                phone,
                country.code if country else None,
                country.phone_code if country else None,
                force_format="INTERNATIONAL",
                raise_exception=True,
            )
        except Exception as error:  # phonenumbers raises its own exception types too
            raise ValidationError(_("The phone number %s is not valid.", phone)) from error

    @api.model
    def _prepare_from_portal_vals(self, order, lines, comment, phone, token):
        """Check a submission of the online form and return the request values.

        ``lines`` maps sale.order.line ids to ``{"quantity": float, "reason":
        sale.return.reason, "note": str}``, and ``"exchange":
        product.product`` for a product exchanged for another variant rather
        than refunded: each product returned has its own reason (one of the
        order's website) and an optional note. Every rule
        of the return policy is checked here; anything wrong raises a
        UserError/ValidationError whose message is shown on the form.
        """
        refusal = order._get_return_refusal_reason()
        if refusal:
            raise UserError(refusal)
        if not isinstance(lines, dict) or not all(isinstance(v, dict) for v in lines.values()):
            raise ValidationError(_("This form could not be read: please fill it in again."))
        if not all(isinstance(value, str) for value in (comment, phone, token) if value):
            raise ValidationError(_("This form could not be read: please fill it in again."))
        comment = (comment or "").strip()
        if len(comment) > self._COMMENT_MAX_LENGTH:
            raise ValidationError(
                _("The comment is too long: %s characters at most.", self._COMMENT_MAX_LENGTH)
            )
        if token and not re.fullmatch(r"[0-9a-f]{32}", token):
            raise ValidationError(_("This form is not valid anymore: please reload the page."))
        # The same rule as the form shows: what each line may still be returned.
        lines_info = {entry["line"].id: entry for entry in order._get_return_lines_info()}
        reasons = self.env["sale.return.reason"]._get_for_website(order.website_id)
        lines_vals = []
        for line_id, values in lines.items():
            # Notes and sections are lines too, but nothing that can be returned.
            line = order.order_line.filtered(
                lambda ln, lid=line_id: ln.id == lid and not ln.display_type
            )
            if not line:
                raise ValidationError(_("A product of this form does not belong to the order."))
            product = line.product_id.display_name
            qty = values.get("quantity")
            if (
                isinstance(qty, bool)
                or not isinstance(qty, (int, float))
                or math.isnan(qty)
                or math.isinf(qty)
                or qty < 0
            ):
                raise ValidationError(_("%s: the quantity must be a positive number.", product))
            if float_is_zero(qty, precision_rounding=line.product_uom.rounding):
                continue
            entry = lines_info.get(line.id) or {"returnable": 0.0, "refusal": ""}
            refusal = line.product_id.product_tmpl_id._get_return_refusal_reason()
            if refusal:
                raise ValidationError(
                    _("%(product)s: %(refusal)s", product=product, refusal=refusal)
                )
            returnable = entry["returnable"]
            if float_compare(qty, returnable, precision_rounding=line.product_uom.rounding) > 0:
                if not returnable and entry["refusal"]:
                    raise ValidationError(
                        _("%(product)s: %(refusal)s", product=product, refusal=entry["refusal"])
                    )
                raise ValidationError(
                    _(
                        "%(product)s: you can return at most %(qty)s.",
                        product=product,
                        qty="%g" % returnable,
                    )
                )
            line_vals = dict(
                self._prepare_line_reason_vals(product, values, reasons),
                sale_line_id=line.id,
                quantity=qty,
            )
            if "exchange" in values:
                variant = values["exchange"]
                if not isinstance(variant, models.BaseModel) or variant._name != "product.product":
                    raise ValidationError(
                        _("This form could not be read: please fill it in again.")
                    )
                line_vals.update(
                    self.env["sale.return.exchange"]._prepare_line_vals(line, variant, qty)
                )
            lines_vals.append((0, 0, line_vals))
        if not lines_vals:
            raise ValidationError(_("Please enter the quantity of at least one product to return."))
        recent = self.search_count(
            [
                ("order_id", "=", order.id),
                ("create_date", ">=", fields.Datetime.now() - timedelta(hours=1)),
            ]
        )
        if recent >= self._get_max_requests_per_hour():
            raise UserError(
                _(
                    "Too many return requests for this order in the last hour: "
                    "please try again later or contact us."
                )
            )
        return {
            "order_id": order.id,
            "partner_id": order.partner_id.id,
            "comment": comment or False,
            "phone": self._normalize_return_phone(phone, order),
            "submission_token": token or False,
            "line_ids": lines_vals,
        }

    @api.model
    def _prepare_line_reason_vals(self, product, values, reasons):
        """The reason and note of one returned product, checked.

        ``product``: its name, for the messages; ``reasons``: those the
        order's website offers.
        """
        reason = values.get("reason")
        if not isinstance(reason, models.BaseModel) or reason._name != "sale.return.reason":
            reason = self.env["sale.return.reason"]
        if not reason:
            raise ValidationError(_("%s: please choose the reason of your return.", product))
        if len(reason) != 1 or reason not in reasons:
            raise ValidationError(
                _("%s: please choose one of the reasons offered on this form.", product)
            )
        note = values.get("note") or ""
        if not isinstance(note, str):
            raise ValidationError(_("This form could not be read: please fill it in again."))
        note = note.strip()
        if len(note) > self._NOTE_MAX_LENGTH:
            raise ValidationError(
                _(
                    "%(product)s: the note is too long: %(max)s characters at most.",
                    product=product,
                    max=self._NOTE_MAX_LENGTH,
                )
            )
        return {"reason_id": reason.id, "note": note or False}

    @api.model
    def _lock_order(self, order):
        """Hold the order's row until this transaction ends.

        Two submissions for the same lines then check the returnable
        quantities one after the other. A plain SELECT ... FOR UPDATE is not
        enough under Flectra's REPEATABLE READ isolation: the second one would
        wait, then check against its old snapshot, which lacks the first
        request. Updating the row (to the same value) makes PostgreSQL fail
        the second transaction instead (a serialization failure), which
        Flectra retries from the start of the HTTP request, on a fresh snapshot.
        """
        # A serialization failure here is expected and retried: not worth an error log.
        self.env.cr.execute(
            "UPDATE sale_order SET write_date = write_date WHERE id = %s",
            [order.id],
            log_exceptions=False,
        )

    @api.model
    def _create_from_portal(self, order, lines, comment=None, phone=None, token=None):
        """The one way in: create a request from the customer's online form.

        Called in sudo by the portal controller once it has checked that the
        visitor may see ``order``. ``lines``: see _prepare_from_portal_vals.
        Submitting the same form twice (same ``token``) returns the first
        request instead of creating another.
        """
        order = order.sudo()
        self._lock_order(order)
        if token:
            existing = self.sudo().search(
                [("order_id", "=", order.id), ("submission_token", "=", token)], limit=1
            )
            if existing:
                return existing
        vals = self._prepare_from_portal_vals(order, lines, comment, phone, token)
        try:
            # A concurrent twin of this submission hits the unique token constraint.
            with self.env.cr.savepoint():
                request = (
                    self.sudo()
                    .with_context(return_request_from_portal=True, mail_create_nosubscribe=True)
                    .create(vals)
                )
                request.flush()
        except psycopg2.IntegrityError as error:
            raise UserError(_("This return form was already submitted.")) from error
        request.message_subscribe(partner_ids=order.partner_id.ids)
        request._notify_customer()
        return request


class SaleReturnRequestLine(models.Model):
    _name = "sale.return.request.line"
    _description = "Return Request Line"

    request_id = fields.Many2one(
        "sale.return.request", required=True, ondelete="cascade", index=True
    )
    sale_line_id = fields.Many2one(
        "sale.order.line", string="Order Line", required=True, ondelete="restrict", index=True
    )
    # The order line's product and unit, computed from the line (set once, at
    # creation), not related to the order line's fields: a related field,
    # stored or not, makes the ORM look the return lines up twice on every
    # write of an order line's product or unit, each add to cart included.
    # product_id is stored for the Returns Analysis and the searches.
    product_id = fields.Many2one("product.product", compute="_compute_product_id", store=True)
    product_uom = fields.Many2one(
        "uom.uom", string="Unit", compute="_compute_product_uom", compute_sudo=True
    )
    company_id = fields.Many2one(related="request_id.company_id", store=True)
    currency_id = fields.Many2one(related="request_id.currency_id")
    quantity = fields.Float(string="Requested", digits="Product Unit of Measure", required=True)
    # Every line has a quantity (see quantity_positive): every line has a reason.
    reason_id = fields.Many2one(
        "sale.return.reason", required=True, index=True, ondelete="restrict"
    )
    note = fields.Char(help="The customer's note on this product.")
    resolution = fields.Selection(
        [("refund", "Refund"), ("exchange", "Exchange")],
        required=True,
        readonly=True,
        default="refund",
        help="What the customer asked for: their money back, or another variant of the product.",
    )
    exchange_product_id = fields.Many2one(
        "product.product",
        string="Exchange For",
        readonly=True,
        ondelete="restrict",
        help="The variant the customer takes instead of the one returned.",
    )
    exchange_price_unit = fields.Float(
        string="Exchange Unit Price",
        digits="Product Price",
        readonly=True,
        help="What one unit of that variant cost when the customer asked, discount included, "
        "taxes as on the order line.",
    )
    exchange_difference = fields.Monetary(
        string="Price Difference",
        readonly=True,
        help="What the customer gets back because the variant costs less, taxes included.",
    )
    exchange_refused = fields.Boolean(
        string="Refunded Instead",
        readonly=True,
        help="The variant could no longer be reserved: this product is refunded instead.",
    )
    quantity_received = fields.Float(
        string="Received",
        digits="Product Unit of Measure",
        compute="_compute_quantity_received",
    )
    quantity_refunded = fields.Float(
        string="Refunded",
        digits="Product Unit of Measure",
        readonly=True,
        copy=False,
        compute="_compute_quantity_refunded",
        store=True,
        help="What this request's refunds gave back of this line, as the refund ledger "
        "says (a cancelled refund gives nothing).",
    )

    _sql_constraints = [
        ("quantity_positive", "CHECK(quantity > 0)", "A returned quantity must be positive."),
    ]

    @api.depends("sale_line_id")
    def _compute_product_id(self):
        for line in self:
            line.product_id = line.sale_line_id.product_id

    @api.depends("sale_line_id")
    def _compute_product_uom(self):
        for line in self:
            line.product_uom = line.sale_line_id.product_uom

    @api.depends(
        "request_id.picking_ids.move_lines.state",
        "request_id.picking_ids.move_lines.quantity_done",
    )
    def _compute_quantity_received(self):
        for line in self:
            moves = line.request_id.picking_ids.move_lines.filtered(
                lambda m, sl=line.sale_line_id: m.state == "done" and m.sale_line_id == sl
            )
            line.quantity_received = sum(
                m.product_uom._compute_quantity(m.quantity_done, line.product_uom) for m in moves
            )

    @api.depends(
        "request_id.refund_ledger_ids.quantity",
        "request_id.refund_ledger_ids.refund_id.state",
        "request_id.refund_ledger_ids.refund_id.refund_split_ids.state",
    )
    def _compute_quantity_refunded(self):
        for line in self:
            ledger = line.request_id.refund_ledger_ids._filter_holding().filtered(
                lambda entry, sl=line.sale_line_id: (
                    entry.sale_line_id == sl and entry.kind != "exchange"
                )
            )
            line.quantity_refunded = sum(ledger.mapped("quantity"))

    def write(self, vals):
        # The exchange decides what ships and what is refunded: set by the
        # form's checks and the request's actions only.
        if LINE_EXCHANGE_FIELDS.intersection(vals) and not is_refund_engine(self.env):
            raise AccessError(_("Exchanges are chosen by customers on the online return form."))
        return super().write(vals)

    def action_refund_instead(self):
        """Refund this product instead of exchanging it: its variant can no
        longer be reserved. The customer's approval e-mail says so."""
        for line in self:
            line.request_id._check_state("requested")
            if line.resolution != "exchange":
                raise UserError(
                    _("%s is refunded already, not exchanged.", line.product_id.display_name)
                )
        for line in self:
            variant = line.exchange_product_id.display_name
            as_refund_engine(line.sudo()).write(
                {"resolution": "refund", "exchange_refused": True, "exchange_difference": 0.0}
            )
            line.request_id.message_post(
                body=_(
                    "%(product)s will be refunded: %(variant)s could not be reserved for the "
                    "exchange.",
                    product=line.product_id.display_name,
                    variant=variant,
                ),
                subtype_xmlid="mail.mt_note",
            )
        return True

    def _get_refund_quantity(self):
        """What is left to refund for this line: received (and requested),
        minus what this request's refunds gave back already, and never more
        than the order's refund ledger has left of the order line (the
        Refund window, another return)."""
        self.ensure_one()
        if self.resolution == "exchange":
            # Exchanged, not refunded: only its price difference is (see
            # sale.return.exchange._get_differences_left).
            return 0.0
        sale_line = self.sale_line_id
        rounding = sale_line.product_uom.rounding
        qty = min(self.quantity, self.quantity_received) - self.quantity_refunded
        left = (
            self.env["sale.order.refund.line"]
            ._get_left_quantities(self.request_id.order_id)
            .get(sale_line, 0.0)
        )
        qty = min(qty, left)
        if float_compare(qty, 0.0, precision_rounding=rounding) <= 0:
            return 0.0
        return qty
