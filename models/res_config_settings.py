from flectra import fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    order_assignment_mode = fields.Selection(
        related="website_id.order_assignment_mode", readonly=False
    )

    # --- Online returns --------------------------------------------------------
    allow_online_returns = fields.Boolean(
        related="website_id.allow_online_returns", readonly=False
    )
    return_window_days = fields.Integer(
        related="website_id.return_window_days", readonly=False
    )
