import hashlib
import secrets
from datetime import timedelta

from flectra import _, api, fields, models
from flectra.exceptions import UserError
from flectra.tools import email_normalize
from flectra.tools.sql import escape_psql

# How long the e-mailed link of a guest's return lookup opens the return form.
LOOKUP_LINK_VALIDITY = timedelta(hours=24)
# The window of the rate limits (the website's per-address and per-client limits).
LOOKUP_RATE_WINDOW = timedelta(hours=1)
# Lookups serve the rate limits and their link's day: older ones are removed.
LOOKUP_KEPT = timedelta(days=30)
# An order number as a customer types it: no shop's is longer.
ORDER_NAME_MAX_LENGTH = 64
EMAIL_MAX_LENGTH = 254


class SaleReturnLookup(models.Model):
    """A guest's "Return an order" lookup: one record per attempt, matched or
    not (the rate limits count them), and, when the order number and the
    e-mail address matched a delivered web order, the e-mailed link that
    opens that order's return form once, for a limited time.

    Only the hash of the link's token is kept: the token itself is in the
    e-mail only.
    """

    _name = "sale.return.lookup"
    _description = "Return Lookup"
    _order = "id desc"

    website_id = fields.Many2one("website", required=True, readonly=True, index=True)
    email = fields.Char(readonly=True, index=True, help="The address typed, normalized.")
    remote_addr = fields.Char("Client Address", readonly=True, index=True)
    order_id = fields.Many2one("sale.order", readonly=True, ondelete="cascade")
    token_hash = fields.Char(readonly=True, index=True, groups="base.group_system")
    expires_at = fields.Datetime(readonly=True)
    used_at = fields.Datetime(readonly=True)

    @staticmethod
    def _hash_token(token):
        return hashlib.sha256(token.encode()).hexdigest()

    @api.model
    def _clean_order_name(self, order_name):
        name = order_name.strip() if isinstance(order_name, str) else ""
        if not name or len(name) > ORDER_NAME_MAX_LENGTH or not name.isprintable():
            raise UserError(_("Please enter the order number shown on your order e-mail."))
        return name

    @api.model
    def _clean_email(self, email):
        text = email.strip() if isinstance(email, str) else ""
        normalized = (
            email_normalize(text)
            if text and len(text) <= EMAIL_MAX_LENGTH and text.isprintable()
            else False
        )
        if not normalized or "," in text or ";" in text:
            raise UserError(_("Please enter the e-mail address of your order."))
        return normalized

    @api.model
    def _request_link(self, website, order_name, email, remote_addr):
        """E-mail the return form's link of the delivered web order named
        ``order_name`` to ``email`` when it is that order's address.

        Raises UserError on a malformed number or address, or when the
        website's limits per address or per client address are reached.
        Otherwise answers nothing: a match and a miss look the same to the
        person asking, so the page cannot be used to find orders or addresses.
        """
        name = self._clean_order_name(order_name)
        email = self._clean_email(email)
        remote_addr = (remote_addr or "")[:64]
        # One lookup at a time per address and per client: the limits are
        # counted and the attempt written under these locks.
        for key in ("email:%s" % email, "addr:%s" % remote_addr):
            self.env.cr.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", ["wsoh_return_lookup:" + key]
            )
        since = fields.Datetime.now() - LOOKUP_RATE_WINDOW
        by_address = self.search_count([("email", "=", email), ("create_date", ">=", since)])
        by_client = self.search_count(
            [("remote_addr", "=", remote_addr), ("create_date", ">=", since)]
        )
        if (
            by_address >= website.return_lookup_limit_per_address
            or by_client >= website.return_lookup_limit_per_client
        ):
            raise UserError(_("Too many lookups: please try again in an hour."))
        order = self._find_returnable_order(website, name, email)
        lookup = self.create(
            {
                "website_id": website.id,
                "email": email,
                "remote_addr": remote_addr,
                "order_id": order.id,
            }
        )
        if order:
            lookup._send_link()
        return True

    @api.model
    def _find_returnable_order(self, website, name, email):
        """The delivered web order of ``website`` named ``name`` (any case)
        whose customer's address is ``email``, or an empty recordset."""
        Order = self.env["sale.order"]
        orders = Order.search(
            [
                ("website_id", "=", website.id),
                ("state", "in", ("sale", "done")),
                ("name", "=ilike", escape_psql(name)),
            ],
            limit=5,
        )
        for order in orders:
            if order.partner_id.email_normalized == email and any(
                picking.state == "done" and picking.picking_type_code == "outgoing"
                for picking in order.picking_ids
            ):
                return order
        return Order

    def _send_link(self):
        """A new token for this lookup's link, hashed here and e-mailed."""
        self.ensure_one()
        token = secrets.token_urlsafe(32)
        self.sudo().write(
            {
                "token_hash": self._hash_token(token),
                "expires_at": fields.Datetime.now() + LOOKUP_LINK_VALIDITY,
            }
        )
        template = self.env.ref(
            "website_sale_order_handling.mail_template_return_lookup", raise_if_not_found=False
        )
        if not template:
            return
        url = "%s/shop/return/%s/%s" % (
            self.website_id.get_base_url(),
            self.order_id.id,
            token,
        )
        template.with_context(return_link=url, lang=self.order_id.partner_id.lang).send_mail(
            self.id, force_send=False, email_values={"email_to": self.email}
        )

    @api.model
    def _get_link_lookup(self, order_id, token):
        """The lookup whose e-mailed link is ``/shop/return/<order_id>/<token>``,
        unused and not expired; else UserError saying why."""
        lookup = self.browse()
        if isinstance(token, str) and 20 <= len(token) <= 100 and token.isascii():
            lookup = self.sudo().search([("token_hash", "=", self._hash_token(token))], limit=1)
        if not lookup or lookup.order_id.id != order_id:
            raise UserError(
                _("This return link is not valid: ask for a new one with your order number.")
            )
        if lookup.used_at:
            raise UserError(
                _("This return link was used already: ask for a new one with your order number.")
            )
        if lookup.expires_at < fields.Datetime.now():
            raise UserError(
                _("This return link has expired: ask for a new one with your order number.")
            )
        return lookup

    def _submit_return(self, lines, comment=None, phone=None, token=None):
        """Submit the return form opened by this lookup's link, which it uses
        up: the request, as sale.return.request._create_from_portal makes it.

        Once only: the lookup's row is locked, so a second submission waits
        for the first, then gets the first one's request back when it is the
        same form (a double click), or is refused. A form the model refuses
        (a missing reason...) leaves the link unused.
        """
        self.ensure_one()
        Request = self.env["sale.return.request"].sudo()
        self.env.cr.execute(
            "SELECT used_at FROM sale_return_lookup WHERE id = %s FOR UPDATE", [self.id]
        )
        row = self.env.cr.fetchone()
        if not row or row[0]:
            same_form = token and Request.search(
                [("order_id", "=", self.order_id.id), ("submission_token", "=", token)], limit=1
            )
            if same_form:
                return same_form
            raise UserError(
                _("This return link was used already: ask for a new one with your order number.")
            )
        with self.env.cr.savepoint():
            return_request = Request._create_from_portal(
                self.order_id.sudo(), lines, comment=comment, phone=phone, token=token
            )
            self.sudo().write({"used_at": fields.Datetime.now()})
        return return_request

    @api.autovacuum
    def _gc_old_lookups(self):
        self.sudo().search([("create_date", "<", fields.Datetime.now() - LOOKUP_KEPT)]).unlink()
