from flectra import fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    # --- Online returns (issue #5) ---------------------------------------
    allow_online_returns = fields.Boolean(
        related="website_id.allow_online_returns", readonly=False
    )
    return_window_days = fields.Integer(
        related="website_id.return_window_days", readonly=False
    )
    # --- End of online returns --------------------------------------------
