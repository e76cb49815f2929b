from flectra import api, fields, models


class PaymentAcquirer(models.Model):
    _inherit = "payment.acquirer"

    is_offline_payment = fields.Boolean(
        compute="_compute_is_offline_payment",
        store=True,
        help="The customer pays outside the shop (wire transfer, in store): "
        "the order waits for someone to confirm it.",
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
