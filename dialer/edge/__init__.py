"""The SIP edge: Kamailio in front of the dialer workers, and what the workers trust of it."""
