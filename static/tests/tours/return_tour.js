flectra.define('website_sale_order_handling.return_tour', function (require) {
'use strict';

var tour = require('web_tour.tour');

// The customer's return flow: order page -> return form -> confirmation.
// Started by the test at /my/orders/<id>: no url here, or the tour would go there first.
tour.register('wsoh_return_products', {
    test: true,
}, [
    {
        content: "ask to return products from the order page",
        trigger: 'a.o_wsoh_return_products',
    },
    {
        content: "the product that cannot be returned is shown disabled",
        trigger: '.o_wsoh_return_refusal',
        extra_trigger: 'tr.o_wsoh_return_line input[disabled]',
        run: function () {},
    },
    {
        content: "return two lamps",
        trigger: 'tr.o_wsoh_return_line input[name^="qty_"]:not([disabled])',
        run: 'text 2',
    },
    {
        content: "choose the reason",
        trigger: 'select[name="reason_id"]',
        run: 'text Damaged or defective',
    },
    {
        content: "explain",
        trigger: 'textarea[name="comment"]',
        run: 'text The lamp arrived with a broken shade.',
    },
    {
        content: "send the request",
        trigger: 'button.o_wsoh_return_submit',
    },
    {
        content: "the confirmation page shows the request",
        trigger: '.o_wsoh_return_confirmation:contains("registered")',
        extra_trigger: '.o_wsoh_return_state:contains("Requested")',
        run: function () {},
    },
]);
});
