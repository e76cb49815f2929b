from flectra import fields, models


class StockPicking(models.Model):
    _inherit = "stock.picking"

    return_request_id = fields.Many2one(
        "sale.return.request", index=True, readonly=True
    )

    def _action_done(self):
        res = super()._action_done()
        # Backorders copy return_request_id, so every part reports here.
        # The warehouse user validating the receipt may not edit requests.
        self.mapped("return_request_id").sudo()._update_from_receipts()
        return res
