import functools
import math
import re
import uuid

from werkzeug.exceptions import Forbidden, NotFound

from flectra import _, http
from flectra.addons.portal.controllers.portal import pager as portal_pager
from flectra.addons.sale.controllers.portal import CustomerPortal
from flectra.exceptions import AccessError, MissingError, UserError
from flectra.http import request

# Form fields the return form posts; anything else is ignored.
# Per order line: its quantity, reason, note and what the customer wants instead
# of the product (qty_<line id>, reason_<line id>...; exchange_<line id>: "" for
# a refund, or the id of another variant).
QTY_PREFIX = "qty_"
LINE_PREFIXES = (QTY_PREFIX, "reason_", "note_", "exchange_")
TEXT_FIELDS = ("comment", "phone", "form_token")
# A database id as posted: digits only (str.isdigit() takes "²"), and in PostgreSQL's integer range.
ID_PATTERN = re.compile(r"[0-9]{1,9}")
# No order line is ever bought by the billion: a bigger number is a typo or an attack.
MAX_QTY = 1e9


class ReturnCustomerPortal(CustomerPortal):
    def _prepare_home_portal_values(self, counters):
        values = super()._prepare_home_portal_values(counters)
        if "return_request_count" in counters:
            Request = request.env["sale.return.request"]
            values["return_request_count"] = (
                Request.search_count([])
                if Request.check_access_rights("read", raise_exception=False)
                else 0
            )
        return values

    def _check_return_order_access(self, order_id, access_token):
        """The order in sudo once the visitor is known to may see it; else 403/404."""
        try:
            return self._document_check_access("sale.order", order_id, access_token=access_token)
        except MissingError as error:
            raise NotFound() from error
        except AccessError as error:
            raise Forbidden() from error

    def _get_visible_return_request(self, request_id, access_token):
        """The request in sudo when the visitor may see it (theirs, or its
        access token), else an empty recordset."""
        try:
            return self._document_check_access(
                "sale.return.request", request_id, access_token=access_token
            )
        except (AccessError, MissingError):
            return request.env["sale.return.request"]

    @staticmethod
    def _text_values(post):
        """The posted values that are text: a multipart post may send any of
        them as a file, which the form can neither read nor show again."""
        return {key: value for key, value in post.items() if isinstance(value, str)}

    def _parse_return_form(self, order_sudo, post):
        """Whitelist and cast the posted values; raise UserError on garbage.

        Returns {sale.order.line id: {"quantity", "reason", "note", and
        "exchange" when the customer chose a variant}}, which the model checks
        (reason offered on the website, note length, variant offered...).
        """
        if any(
            not isinstance(value, str)
            for key, value in post.items()
            if key in TEXT_FIELDS or key.startswith(LINE_PREFIXES)
        ):
            raise UserError(_("This form could not be read: please fill it in again."))
        Reason = request.env["sale.return.reason"].sudo()
        lines = {}
        for key, value in post.items():
            if not key.startswith(QTY_PREFIX):
                continue
            suffix = key[len(QTY_PREFIX) :]
            try:
                line_id = int(suffix)
            except ValueError as error:
                raise UserError(
                    _("A product of this form does not belong to the order.")
                ) from error
            value = (value or "").strip().replace(",", ".")
            if not value:
                continue
            try:
                qty = float(value)
            except ValueError as error:
                raise UserError(_("Quantities must be numbers.")) from error
            if math.isnan(qty) or math.isinf(qty) or abs(qty) > MAX_QTY:
                raise UserError(_("Quantities must be reasonable numbers."))
            reason_id = (post.get("reason_%s" % suffix) or "").strip()
            lines[line_id] = {
                "quantity": qty,
                "reason": Reason.browse(int(reason_id))
                if ID_PATTERN.fullmatch(reason_id)
                else Reason,
                "note": post.get("note_%s" % suffix) or "",
            }
            exchange_id = (post.get("exchange_%s" % suffix) or "").strip()
            if exchange_id:
                if not ID_PATTERN.fullmatch(exchange_id):
                    raise UserError(_("This form could not be read: please fill it in again."))
                # A variant that does not exist (any more) is empty: the model says why.
                lines[line_id]["exchange"] = (
                    request.env["product.product"].sudo().browse(int(exchange_id)).exists()
                )
        # An unknown id is no reason: the model then says which product lacks one.
        existing = Reason.union(*(values["reason"] for values in lines.values())).exists()
        for values in lines.values():
            values["reason"] &= existing
        return lines

    def _return_form_values(self, order_sudo, access_token, post=None, error=None):
        post = post or {}
        return {
            "page_name": "order_return",
            "sale_order": order_sudo,
            "access_token": access_token,
            "lines_info": order_sudo._get_return_lines_info(),
            "exchange_options": request.env["sale.return.exchange"]
            .sudo()
            ._get_options(order_sudo.order_line),
            "order_refusal": order_sudo._get_return_refusal_reason(),
            "reasons": request.env["sale.return.reason"]
            .sudo()
            ._get_for_website(order_sudo.website_id),
            "comment_max_length": request.env["sale.return.request"]._COMMENT_MAX_LENGTH,
            "note_max_length": request.env["sale.return.request"]._NOTE_MAX_LENGTH,
            "form_token": post.get("form_token") or uuid.uuid4().hex,
            "post": post,
            "error": error,
        }

    @http.route(
        ["/my/orders/<int:order_id>/return"],
        type="http",
        auth="public",
        website=True,
        methods=["GET", "POST"],
    )
    def portal_order_return(self, order_id, access_token=None, **post):
        order_sudo = self._check_return_order_access(order_id, access_token)
        return self._return_form_response(
            order_sudo,
            post,
            functools.partial(
                request.env["sale.return.request"].sudo()._create_from_portal, order_sudo
            ),
            access_token=access_token,
        )

    def _return_form_response(self, order_sudo, post, submit, access_token=None, form_action=None):
        """The return form of ``order_sudo``. A POST is handed to
        ``submit(lines, comment=, phone=, token=)``, which makes the request
        the customer is then sent to; the form comes back with what was
        typed, and why, when the model refuses it. ``form_action``: where the
        form posts, when not to the portal's route."""
        error = None
        if request.httprequest.method == "POST":
            try:
                lines = self._parse_return_form(order_sudo, post)
                return_request = submit(
                    lines,
                    comment=post.get("comment"),
                    phone=post.get("phone"),
                    token=post.get("form_token"),
                )
            except UserError as exc:  # ValidationError is a UserError
                error = exc.args[0]
            else:
                return request.redirect(return_request.get_portal_url(query_string="&submitted=1"))
        values = self._return_form_values(
            order_sudo, access_token, post=self._text_values(post), error=error
        )
        values["form_action"] = form_action
        return request.render("website_sale_order_handling.portal_order_return_form", values)

    @http.route(
        ["/my/returns", "/my/returns/page/<int:page>"],
        type="http",
        auth="user",
        website=True,
    )
    def portal_my_returns(self, page=1, **kw):
        values = self._prepare_portal_layout_values()
        Request = request.env["sale.return.request"]
        count = Request.search_count([])
        pager = portal_pager(url="/my/returns", total=count, page=page, step=self._items_per_page)
        requests = Request.search([], limit=self._items_per_page, offset=pager["offset"])
        values.update(
            {
                "page_name": "returns",
                "return_requests": requests,
                "pager": pager,
                "default_url": "/my/returns",
            }
        )
        return request.render("website_sale_order_handling.portal_my_returns", values)

    @http.route(
        ["/my/returns/<int:request_id>"],
        type="http",
        auth="public",
        website=True,
    )
    def portal_my_return(self, request_id, access_token=None, submitted=False, **kw):
        request_sudo = self._get_visible_return_request(request_id, access_token)
        if not request_sudo:
            return request.redirect("/my")
        values = self._get_page_view_values(
            request_sudo,
            access_token,
            {"page_name": "return", "return_request": request_sudo, "submitted": submitted},
            "my_returns_history",
            False,
            **kw,
        )
        return request.render("website_sale_order_handling.portal_my_return", values)

    @http.route(
        ["/my/returns/<int:request_id>/slip"],
        type="http",
        auth="public",
        website=True,
        methods=["GET"],
    )
    def portal_my_return_slip(self, request_id, access_token=None, download=None, **kw):
        """The return slip of an approved request, as a PDF; else its page."""
        request_sudo = self._get_visible_return_request(request_id, access_token)
        if not request_sudo:
            return request.redirect("/my")
        if request_sudo._get_return_slip_refusal():
            return request.redirect(request_sudo.get_portal_url())
        return self._show_report(
            model=request_sudo,
            report_type="pdf",
            report_ref="website_sale_order_handling.action_report_return_slip",
            download=download == "true",
        )

    # ------------------------------------------------------------------
    # Guests: the Return an order page and its e-mailed link
    # ------------------------------------------------------------------

    @http.route(
        ["/shop/return"],
        type="http",
        auth="public",
        website=True,
        methods=["GET", "POST"],
    )
    def return_lookup(self, order_name=None, email=None, **post):
        """Ask for the return form's link of an order by its number and e-mail."""
        website = request.website
        if not website.allow_online_returns:
            raise NotFound()
        values = {
            "order_name": order_name if isinstance(order_name, str) else "",
            "email": email if isinstance(email, str) else "",
            "sent": False,
            "error": None,
        }
        if request.httprequest.method == "POST":
            try:
                request.env["sale.return.lookup"].sudo()._request_link(
                    website, order_name, email, request.httprequest.remote_addr
                )
            except UserError as exc:
                values["error"] = exc.args[0]
            else:
                values["sent"] = True
        return request.render("website_sale_order_handling.return_lookup_page", values)

    @http.route(
        ["/shop/return/<int:order_id>/<string:token>"],
        type="http",
        auth="public",
        website=True,
        methods=["GET", "POST"],
        sitemap=False,
    )
    def return_lookup_form(self, order_id, token, **post):
        """The order's return form, opened by the e-mailed link (once)."""
        try:
            lookup = request.env["sale.return.lookup"].sudo()._get_link_lookup(order_id, token)
        except UserError as exc:
            values = {"order_name": "", "email": "", "sent": False, "error": exc.args[0]}
            return request.render("website_sale_order_handling.return_lookup_page", values)
        return self._return_form_response(
            lookup.order_id.sudo(),
            post,
            lookup._submit_return,
            form_action=request.httprequest.path,
        )
