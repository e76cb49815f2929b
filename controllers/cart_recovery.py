from werkzeug.exceptions import NotFound

from flectra import http
from flectra.addons.website_sale.controllers.main import WebsiteSale
from flectra.http import request

PAGE = "website_sale_order_handling.cart_reminder_unsubscribe_page"


class CartRecovery(http.Controller):
    @http.route(
        "/shop/cart/unsubscribe",
        type="http",
        auth="public",
        website=True,
        sitemap=False,
        methods=["GET", "POST"],
        csrf=False,
    )
    def cart_reminder_unsubscribe(self, **_params):
        """Unsubscribe link of the abandoned cart e-mails (RFC 8058).

        The link (its query string only) names the address the e-mail went
        to, the website, and their signature, which is what authenticates a
        POST (a mail provider's carries no CSRF token). GET only shows a
        confirm button: link scanners and previews fetch every link of an
        e-mail. A POST unsubscribes when it is the page's own form
        (``confirm=1``) or the mail provider's one-click request, whose body
        must be ``List-Unsubscribe=One-Click``; any other POST only shows the
        page again. A bad link changes nothing and gets its own page, never
        an error.
        """
        link = request.httprequest.args
        form = request.httprequest.form
        Mailer = request.env["website.abandoned.cart.mailer"]
        args = (link.get("website"), link.get("email"), link.get("token"))
        is_one_click = form.get("List-Unsubscribe") == "One-Click"
        is_confirmed = form.get("confirm") == "1"
        if request.httprequest.method == "POST" and (is_one_click or is_confirmed):
            status = Mailer._unsubscribe(*args)
        else:
            status = Mailer._get_unsubscribe_status(*args)
        return request.render(PAGE, {"status": status, "action": request.httprequest.full_path})

    @http.route(
        "/shop/cart/unsubscribe/<int:partner_id>/<string:token>",
        type="http",
        auth="public",
        website=True,
        sitemap=False,
        methods=["GET", "POST"],
        csrf=False,
    )
    def cart_reminder_unsubscribe_by_contact(self, partner_id, token, **_params):
        """The links of e-mails sent before 2.0.1.3.0 signed a contact, whose
        address may have changed since: they change nothing any more."""
        return request.render(PAGE, {"status": "invalid", "action": request.httprequest.path})


class WebsiteSaleCartResume(WebsiteSale):
    @http.route()
    def cart(self, access_token=None, revive="", **post):
        """The *Resume your order* link of the e-mails: count the click."""
        if access_token is not None:
            if not isinstance(access_token, str) or "\x00" in access_token:
                # website_sale would hand it to PostgreSQL and answer 500.
                raise NotFound()
            request.env["website.cart.recovery.event"]._log_resume_click(access_token)
        return super().cart(access_token=access_token, revive=revive, **post)
