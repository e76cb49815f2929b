from flectra import _, api, fields, models


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
        if not self._is_returnable_by_policy(
            self.type, self.return_policy, self.categ_id.return_policy
        ):
            return _("This product cannot be returned.")
        return ""

    @api.model
    def _is_returnable_by_policy(self, product_type, policy, category_policy):
        """The return policy's rule on plain values (the order page's Return
        button reads them in SQL): services never, else the product's
        policy, else its category's."""
        if product_type == "service":
            return False
        if policy == "category":
            policy = category_policy or "returnable"
        return policy != "not_returnable"
