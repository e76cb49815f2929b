from flectra import api, models

# Cart changes that count as customer activity on an abandoned cart.
CART_ACTIVITY_FIELDS = {"product_id", "product_uom_qty"}


class SaleOrderLine(models.Model):
    _inherit = "sale.order.line"

    @api.model_create_multi
    def create(self, vals_list):
        lines = super().create(vals_list)
        lines.mapped("order_id")._touch_cart_activity()
        return lines

    def write(self, vals):
        res = super().write(vals)
        if CART_ACTIVITY_FIELDS.intersection(vals):
            self.mapped("order_id")._touch_cart_activity()
        return res

    def unlink(self):
        orders = self.mapped("order_id")
        res = super().unlink()
        orders.exists()._touch_cart_activity()
        return res
