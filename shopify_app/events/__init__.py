"""The event pipeline: stored webhook deliveries, claimed and handled by the worker."""
