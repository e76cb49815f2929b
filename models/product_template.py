from flectra import _, fields, models


class ProductTemplate(models.Model):
    _inherit = "product.template"

    return_policy = fields.Selection(
        [
            ("category", "Category default"),
            ("returnable", "Returnable"),
            ("not_returnable", "Not returnable"),
        ],
        string="Online Returns",
        default="category",
        required=True,
        help="Whether customers may return this product through the online "
        "return form. Services are never returnable.",
    )

    def _get_return_refusal_reason(self):
        """Why this product cannot be returned online, or '' when it can.

        The reason is shown to the customer next to the disabled line.
        """
        self.ensure_one()
        if self.type == "service":
            return _("Services cannot be returned.")
        policy = self.return_policy
        if policy == "category":
            policy = self.categ_id.return_policy or "returnable"
        if policy == "not_returnable":
            return _("This product cannot be returned.")
        return ""
