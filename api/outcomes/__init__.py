"""Call outcomes for the agency's collection system: the payload, where it is read from, and
the signed webhook.
"""
