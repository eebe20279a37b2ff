"""Malformed SIP against Dialguard's SIP listeners: RFC 4475, a generated corpus, SIPVicious."""
