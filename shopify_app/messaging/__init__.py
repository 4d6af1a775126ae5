"""Turning a flow's content into a message for a channel: templates, links, addresses."""
