"""Background jobs that call Shopify: enqueued in the database, run by the worker, at least once."""
