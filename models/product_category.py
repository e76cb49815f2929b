from flectra import fields, models


class ProductCategory(models.Model):
    _inherit = "product.category"

    return_policy = fields.Selection(
        [("returnable", "Returnable"), ("not_returnable", "Not returnable")],
        string="Online Returns",
        default="returnable",
        required=True,
        help="Default return policy of the products of this category; a product can override it.",
    )
