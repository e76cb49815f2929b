from flectra import fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    order_assignment_mode = fields.Selection(
        related="website_id.order_assignment_mode", readonly=False
    )
