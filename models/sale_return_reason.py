from flectra import api, fields, models
from flectra.osv import expression


class SaleReturnReason(models.Model):
    _name = "sale.return.reason"
    _description = "Return Reason"
    _order = "sequence, id"

    name = fields.Char(required=True, translate=True)
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True)
    website_id = fields.Many2one(
        "website",
        ondelete="cascade",
        help="Offer this reason on this website only; empty means every website.",
    )

    @api.model
    def _get_website_domain(self, website):
        return expression.OR([[("website_id", "=", False)], [("website_id", "=", website.id)]])

    @api.model
    def _get_for_website(self, website):
        """The reasons a customer of ``website`` may choose from."""
        return self.search(self._get_website_domain(website))
