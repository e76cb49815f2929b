from flectra import _, api, fields, models

STRIPE_API_URL_PARAM = "website_sale_order_handling.stripe_api_url"
STRIPE_TIMEOUT_PARAM = "website_sale_order_handling.stripe_refund_timeout"


class PaymentAcquirer(models.Model):
    _inherit = "payment.acquirer"

    is_offline_payment = fields.Boolean(
        compute="_compute_is_offline_payment",
        store=True,
        help="The customer pays outside the shop (wire transfer, in store): "
        "the order waits for someone to confirm it.",
    )

    support_refund = fields.Selection(
        [
            ("none", "Unsupported"),
            ("full_only", "Full only"),
            ("partial", "Full & partial"),
        ],
        string="Refunds",
        compute="_compute_support_refund",
        help="Whether payments made with this acquirer can be refunded from the order: "
        "not at all, only for their whole amount, or for any part of it.",
    )
    refund_by_accounting = fields.Boolean(
        compute="_compute_support_refund",
        help="Refunds wait, pending, until accounting has paid them and marks them done.",
    )

    @api.model
    def _get_offline_providers(self):
        """Providers whose money arrives outside the shop. Pay in store is a
        'transfer' acquirer too. Override to add one."""
        return ["transfer"]

    @api.depends("provider")
    def _compute_is_offline_payment(self):
        offline = self._get_offline_providers()
        for acquirer in self:
            acquirer.is_offline_payment = acquirer.provider in offline

    @api.depends("provider")
    def _compute_support_refund(self):
        support = self._get_refund_support()
        by_accounting = self._get_refund_by_accounting_providers()
        for acquirer in self:
            acquirer.support_refund = support.get(acquirer.provider, "none")
            acquirer.refund_by_accounting = acquirer.provider in by_accounting

    @api.model
    def _get_refund_support(self):
        """Refund support per provider; a provider module adds itself here."""
        return {"test": "partial", "transfer": "partial", "stripe": "partial"}

    @api.model
    def _get_refund_by_accounting_providers(self):
        """Providers whose refunds are paid by hand by accounting (a bank transfer, cash)."""
        return ["transfer"]

    def _get_refund_unsupported_message(self):
        self.ensure_one()
        return _(
            "%(acquirer)s cannot refund payments. Go to Website > Configuration > "
            "eCommerce > Payment Acquirers and enable an acquirer whose Refunds field says "
            '"Full & partial" (Stripe or Wire Transfer), or refund this customer '
            "by hand with a credit note and an outbound payment.",
            acquirer=self.name,
        )

    # Stripe: the refund endpoint is read from a parameter, so tests (and a
    # proxy) can point it elsewhere than api.stripe.com.
    def _stripe_refund_api_url(self):
        self.ensure_one()
        url = self.env["ir.config_parameter"].sudo().get_param(STRIPE_API_URL_PARAM)
        return url or self._get_stripe_api_url()

    def _stripe_refund_timeout(self):
        value = self.env["ir.config_parameter"].sudo().get_param(STRIPE_TIMEOUT_PARAM)
        try:
            return float(value) if value else 30.0
        except ValueError:
            return 30.0
