flectra.define('website_sale_order_handling.shop_smoke_tour', function (require) {
'use strict';

var tour = require('web_tour.tour');

// The smallest real browser flow: the shop lists a product and its page opens.
tour.register('wsoh_shop_smoke', {
    test: true,
    url: '/shop?search=Kettle',
}, [
    {
        content: "open the kettle from the shop grid",
        trigger: '.oe_product_cart a:contains("Tour Test Kettle")',
    },
    {
        content: "the product page shows the add-to-cart button",
        trigger: '#product_details h1:contains("Tour Test Kettle")',
        extra_trigger: '#add_to_cart',
        run: function () {},
    },
]);
});
