from flectra import http
from flectra.http import request


class CartRecovery(http.Controller):
    @http.route(
        "/shop/cart/unsubscribe/<int:partner_id>/<string:token>",
        type="http", auth="public", website=True, sitemap=False,
    )
    def cart_reminder_unsubscribe(self, partner_id, token, **kwargs):
        """One-click unsubscribe link of the abandoned cart e-mails.

        The model checks the signed token; a bad one changes nothing and gets
        its own page, never an error.
        """
        status = request.env["res.partner"]._cart_reminder_unsubscribe(partner_id, token)
        return request.render(
            "website_sale_order_handling.cart_reminder_unsubscribe_page", {"status": status}
        )
