flectra.define('website_sale_order_handling.order_refund_tour', function (require) {
'use strict';

var tour = require('web_tour.tour');

// A sales manager refunds a paid web order from its form, as the README tells.
// No url: the test opens the order's form itself (/web#id=...&model=sale.order).
tour.register('wsoh_order_refund', {
    test: true,
}, [
    {
        content: "click Refund on the paid order",
        trigger: '.o_form_view .o_statusbar_buttons button[name="action_refund"]:not(.o_invisible_modifier)',
    },
    {
        content: "confirm the refund",
        trigger: '.modal-footer .btn-primary',
    },
    {
        content: "the notification says the customer is refunded",
        trigger: '.o_notification_title:contains("Refunded")',
        run: function () {},
    },
    {
        content: "the reloaded order has no Refund button any more",
        trigger: '.o_form_view .o_statusbar_buttons:has(button[name="action_refund"].o_invisible_modifier)',
        run: function () {},
    },
    {
        content: "open the Refunds tab",
        trigger: '.o_form_view .o_notebook a[role="tab"]:contains("Refunds")',
    },
    {
        content: "the refund is listed as done",
        trigger: '.o_form_view .o_field_widget[name="refund_transaction_ids"] td:contains("Done")',
        run: function () {},
    },
]);
});
