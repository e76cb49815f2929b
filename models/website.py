from flectra import _, api, fields, models
from flectra.exceptions import ValidationError


class Website(models.Model):
    _inherit = "website"

    # --- Online returns (issue #5) ---------------------------------------
    allow_online_returns = fields.Boolean(
        string="Accept Online Returns",
        help="Customers can ask to return delivered products from their order page.",
    )
    return_window_days = fields.Integer(
        string="Return Window (days)",
        default=30,
        help="Days after the delivery during which products can be returned; "
        "0 means no limit.",
    )


    @api.constrains("return_window_days")
    def _check_return_window_days(self):
        if any(website.return_window_days < 0 for website in self):
            raise ValidationError(_("The return window cannot be negative."))
    # --- End of online returns --------------------------------------------
