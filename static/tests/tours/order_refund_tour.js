flectra.define('website_sale_order_handling.order_refund_tour', function (require) {
'use strict';

var tour = require('web_tour.tour');

// A sales manager refunds a paid web order from its form, as the README tells:
// the Refund button opens the wizard, prefilled with everything left to refund.
// No url: the test opens the order's form itself (/web#id=...&model=sale.order).
tour.register('wsoh_order_refund', {
    test: true,
}, [
    {
        content: "click Refund on the paid order",
        trigger: '.o_form_view .o_statusbar_buttons button[name="action_open_refund_wizard"]:not(.o_invisible_modifier)',
    },
    {
        content: "the wizard shows the whole order left to refund, before acting",
        trigger: '.o_refund_amount:contains("30.00")',
        run: function () {},
    },
    {
        content: "write the internal reason",
        trigger: 'textarea[name="reason"]',
        run: 'text Customer cancelled by phone',
    },
    {
        content: "confirm the refund",
        trigger: '.modal-footer button[name="action_refund"]',
    },
    {
        content: "the notification says the customer is refunded",
        trigger: '.o_notification_title:contains("Refunded")',
        run: function () {},
    },
    {
        content: "the reloaded order has no Refund button any more",
        trigger: '.o_form_view .o_statusbar_buttons:has(button[name="action_open_refund_wizard"].o_invisible_modifier)',
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

// The wizard itself: refund one of two teapots, not the cups, and say why.
tour.register('wsoh_order_refund_wizard', {
    test: true,
}, [
    {
        content: "click Refund on the paid order",
        trigger: '.o_form_view .o_statusbar_buttons button[name="action_open_refund_wizard"]:not(.o_invisible_modifier)',
    },
    {
        content: "everything left is prefilled: 2 teapots and a cup",
        trigger: '.o_refund_amount:contains("70.00")',
        run: function () {},
    },
    {
        content: "edit the teapots' quantity",
        trigger: 'tr.o_data_row:contains("Wizard Tour Teapot") td.o_data_cell:eq(2)',
    },
    {
        content: "refund one teapot",
        trigger: 'tr.o_selected_row:contains("Wizard Tour Teapot") input[name="quantity"]',
        run: 'text 1',
    },
    {
        content: "edit the cup's quantity",
        trigger: 'tr.o_data_row:contains("Wizard Tour Cup") td.o_data_cell:eq(2)',
    },
    {
        content: "keep the cup",
        trigger: 'tr.o_selected_row:contains("Wizard Tour Cup") input[name="quantity"]',
        run: 'text 0',
    },
    {
        content: "write the internal reason (this also leaves the line)",
        trigger: 'textarea[name="reason"]',
        run: 'text One teapot arrived broken',
    },
    {
        content: "the wizard shows what this refunds before acting",
        trigger: '.o_refund_amount:contains("30.00")',
        run: function () {},
    },
    {
        content: "confirm the refund",
        trigger: '.modal-footer button[name="action_refund"]',
    },
    {
        content: "the notification says the customer is refunded",
        trigger: '.o_notification_title:contains("Refunded")',
        run: function () {},
    },
    {
        content: "the rest of the order can still be refunded",
        trigger: '.o_form_view .o_statusbar_buttons button[name="action_open_refund_wizard"]:not(.o_invisible_modifier)',
        run: function () {},
    },
]);
});
