"""One module per tab of the page: its controls, its handlers (each a named API endpoint) and how it draws them."""
