flectra.define('website_sale_order_handling.return_tour', function (require) {
'use strict';

var tour = require('web_tour.tour');

// The customer's return flow: order page -> return form (a reason and a note
// per product) -> confirmation.
// Started by the test at /my/orders/<id>: no url here, or the tour would go there first.
tour.register('wsoh_return_products', {
    test: true,
}, [
    {
        content: "ask to return products from the order page",
        trigger: 'a.o_wsoh_return_products',
    },
    {
        content: "the product that cannot be returned is shown disabled, without a reason to choose",
        trigger: '.o_wsoh_return_refusal',
        extra_trigger: 'tr.o_wsoh_return_line input[disabled]',
        run: function () {
            if ($('tr.o_wsoh_return_line_reason').length !== 1) {
                console.error('One reason row is expected: the service has none.');
            }
        },
    },
    {
        content: "return two lamps",
        trigger: 'tr.o_wsoh_return_line input[name^="qty_"]:not([disabled])',
        run: 'text 2',
    },
    {
        content: "explain what is wrong with them",
        trigger: 'tr.o_wsoh_return_line_reason input[name^="note_"]',
        run: 'text The shade is broken.',
    },
    {
        content: "write a comment on the whole return",
        trigger: 'textarea[name="comment"]',
        run: 'text Please pick them up on Monday.',
    },
    {
        content: "send the request without choosing a reason",
        trigger: 'button.o_wsoh_return_submit',
    },
    {
        content: "the form asks the reason of that product and keeps what was typed",
        trigger: '.o_wsoh_return_error:contains("Portal Return Lamp"):contains("reason")',
        extra_trigger: 'tr.o_wsoh_return_line_reason input[name^="note_"][value="The shade is broken."]',
        run: function () {
            var qty = $('tr.o_wsoh_return_line input[name^="qty_"]:not([disabled])').val();
            var comment = $('textarea[name="comment"]').val();
            if (qty !== '2' || comment !== 'Please pick them up on Monday.') {
                console.error('The form lost what was typed: ' + qty + ' / ' + comment);
            }
        },
    },
    {
        content: "choose the reason of the lamps",
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
    {
        content: "with the reason and the note of the lamps",
        trigger: 'tr.o_wsoh_return_request_line .o_wsoh_return_line_reason:contains("Damaged or defective")',
        extra_trigger: 'tr.o_wsoh_return_request_line .o_wsoh_return_line_note:contains("The shade is broken.")',
        run: function () {},
    },
]);

// An exchange on the portal form: another size instead of the money back.
// Started by the test at the order's return form.
tour.register('wsoh_return_exchange', {
    test: true,
}, [
    {
        content: "the dearer size is named, not offered",
        trigger: '.o_wsoh_return_exchange_dearer:contains("(L)")',
        run: function () {
            if ($('select[name^="exchange_"] option:contains("(L)")').length) {
                console.error('A dearer size is offered in exchange.');
            }
        },
    },
    {
        content: "return one shirt",
        trigger: 'tr.o_wsoh_return_line input[name^="qty_"]',
        run: 'text 1',
    },
    {
        content: "give the reason",
        trigger: 'tr.o_wsoh_return_line_reason select[name^="reason_"]',
        run: 'text Damaged or defective',
    },
    {
        content: "take the smaller size instead of a refund",
        trigger: 'select[name^="exchange_"]:has(option:contains("Exchange for Tour Shirt (S)"))',
        run: function () {
            var $select = $('select[name^="exchange_"]');
            var $option = $select.find('option').filter(function () {
                return $(this).text().indexOf('Tour Shirt (S)') !== -1;
            });
            $select.val($option.val()).trigger('change');
        },
    },
    {
        content: "send the request",
        trigger: 'button.o_wsoh_return_submit',
    },
    {
        content: "the request shows the exchange and the difference paid back",
        trigger: '.o_wsoh_return_confirmation:contains("registered")',
        extra_trigger: 'tr.o_wsoh_return_request_line .o_wsoh_return_line_resolution:contains("Exchange for"):contains("(S)")',
        run: function () {},
    },
]);
});
