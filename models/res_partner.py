from flectra import _, api, fields, models
from flectra.tools import consteq
from flectra.tools.misc import hmac

CART_UNSUBSCRIBE_SCOPE = "website_sale_order_handling.cart_unsubscribe"


class ResPartner(models.Model):
    _inherit = "res.partner"

    cart_reminder_opt_out = fields.Boolean(
        "No Abandoned Cart E-mails", copy=False,
        help="The customer unsubscribed from abandoned cart e-mails: none is sent any more.",
    )

    def _cart_reminder_opt_out(self):
        """Stop abandoned cart e-mails to these customers.

        A guest who typed contact details twice has two partners with the same
        address: the opt-out covers every partner sharing the e-mail address.
        """
        emails = [email for email in self.mapped("email_normalized") if email]
        partners = self
        if emails:
            partners |= self.sudo().search([("email_normalized", "in", emails)])
        partners.sudo().filtered(lambda p: not p.cart_reminder_opt_out).write(
            {"cart_reminder_opt_out": True}
        )
        return partners

    def _cart_reminder_unsubscribe_token(self):
        """Signed token of this customer's unsubscribe link (keyed by the database secret)."""
        self.ensure_one()
        return hmac(self.env(su=True), CART_UNSUBSCRIBE_SCOPE, self.id)

    @api.model
    def _cart_reminder_unsubscribe_status(self, partner_id, token):
        """What an unsubscribe link would do, changing nothing: ``"confirm"``,
        ``"already"`` (unsubscribed before) or ``"invalid"`` (forged or altered)."""
        partner = self.sudo().browse(partner_id).exists()
        if not partner or not isinstance(token, str) or not consteq(
            partner._cart_reminder_unsubscribe_token(), token
        ):
            return "invalid"
        return "already" if partner.cart_reminder_opt_out else "confirm"

    @api.model
    def _cart_reminder_unsubscribe(self, partner_id, token):
        """Opt a customer out from an unsubscribe link.

        Returns ``"done"``, ``"already"`` (a valid link used again changes
        nothing) or ``"invalid"`` (forged or altered: nothing changes).
        """
        status = self._cart_reminder_unsubscribe_status(partner_id, token)
        if status != "confirm":
            return status
        partner = self.sudo().browse(partner_id)
        partner._cart_reminder_opt_out()
        partner.message_post(body=_("Unsubscribed from abandoned cart e-mails."))
        return "done"
