from werkzeug.exceptions import NotFound

from flectra import http
from flectra.addons.website_sale.controllers.main import WebsiteSale
from flectra.http import request


class CartRecovery(http.Controller):
    @http.route(
        "/shop/cart/unsubscribe/<int:partner_id>/<string:token>",
        type="http", auth="public", website=True, sitemap=False,
        methods=["GET", "POST"], csrf=False,
    )
    def cart_reminder_unsubscribe(self, partner_id, token, **kwargs):
        """Unsubscribe link of the abandoned cart e-mails (RFC 8058).

        GET only shows a page with a confirm button: link scanners and
        previews fetch every link of an e-mail, and must not unsubscribe
        anyone. POST unsubscribes: the confirm button, or the mail provider's
        one-click request (``List-Unsubscribe=One-Click``), which carries no
        CSRF token; the signed token in the URL authenticates it. A bad token
        changes nothing and gets its own page, never an error.
        """
        Partner = request.env["res.partner"]
        if request.httprequest.method == "POST":
            status = Partner._cart_reminder_unsubscribe(partner_id, token)
        else:
            status = Partner._cart_reminder_unsubscribe_status(partner_id, token)
        return request.render(
            "website_sale_order_handling.cart_reminder_unsubscribe_page",
            {"status": status, "action": request.httprequest.path},
        )


class WebsiteSaleCartResume(WebsiteSale):
    @http.route()
    def cart(self, access_token=None, revive="", **post):
        """The *Resume your order* link of the e-mails: count the click."""
        if access_token is not None:
            if not isinstance(access_token, str) or "\x00" in access_token:
                # website_sale would hand it to PostgreSQL and answer 500.
                raise NotFound()
            request.env["sale.order"]._register_cart_resume_click(access_token)
        return super().cart(access_token=access_token, revive=revive, **post)
