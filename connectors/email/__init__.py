"""Email: building RFC 5322 messages and handing them to a mail server or provider."""
