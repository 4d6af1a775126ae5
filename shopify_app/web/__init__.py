"""Pages and endpoints served to people: customers (unsubscribe) and, in demo mode, the operator."""
