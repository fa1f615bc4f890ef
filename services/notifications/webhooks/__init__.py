"""The webhook channel: routing filters, the signed sender, secrets, the SSRF guard."""
