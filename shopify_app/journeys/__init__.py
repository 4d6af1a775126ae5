"""Running flows against the mirror: enrolment on storefront events, decisions and sends when due."""
