"""The storefront side: what the shop's web pixel reports, taken in as untrusted input, and linked to contacts
only by proof."""
