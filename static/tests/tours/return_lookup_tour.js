flectra.define('website_sale_order_handling.return_lookup_tour', function (require) {
'use strict';

var tour = require('web_tour.tour');

// A guest without an account asks for the return form's link of an order.
// Started by the test at /shop/return (the footer's "Return an order").
tour.register('wsoh_return_lookup', {
    test: true,
}, [
    {
        content: "type the order number (the test names the order WSOH-GUEST-1) in lower case",
        trigger: 'form.o_wsoh_return_lookup_form input[name="order_name"]',
        run: 'text wsoh-guest-1',
    },
    {
        content: "type the e-mail address of the order",
        trigger: 'form.o_wsoh_return_lookup_form input[name="email"]',
        run: 'text guest.returner@example.com',
    },
    {
        content: "ask for the link",
        trigger: 'button.o_wsoh_return_lookup_submit',
    },
    {
        content: "the page says to check the e-mail",
        trigger: '.o_wsoh_return_lookup_sent',
        run: function () {},
    },
]);

// The e-mailed link opens the order's return form: the guest returns a lamp.
// Started by the test at the link's URL.
tour.register('wsoh_return_by_link', {
    test: true,
}, [
    {
        content: "return one lamp",
        trigger: 'tr.o_wsoh_return_line input[name^="qty_"]:not([disabled])',
        run: 'text 1',
    },
    {
        content: "choose why",
        trigger: 'tr.o_wsoh_return_line_reason select[name^="reason_"]',
        run: 'text Damaged or defective',
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

// The customer prints the return slip of an approved request.
// Started by the test at /my/returns/<id>.
tour.register('wsoh_return_slip', {
    test: true,
}, [
    {
        content: "the request's page offers the return slip",
        trigger: 'a.o_wsoh_return_slip_print[href*="/slip"]',
        run: function () {
            var href = this.$anchor.attr('href');
            var name = $('.o_wsoh_return_slip_box').closest('.card').find('h4').text().replace('Return', '').trim();
            $.get(href).then(function (slip) {
                // A PDF on a server; the test server renders reports as HTML.
                if (slip.indexOf(name) === -1 || slip.indexOf('Code128') === -1) {
                    console.error('The slip lacks its number or its barcode: ' + name);
                } else {
                    $('body').addClass('o_wsoh_tour_slip_printed');
                }
            }, function () {
                console.error('The slip could not be printed.');
            });
        },
    },
    {
        content: "the slip came back with the request's number and barcode",
        trigger: 'body.o_wsoh_tour_slip_printed',
        run: function () {},
    },
]);
});
