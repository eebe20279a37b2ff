"""SIP itself: the pjsua2 back-to-back agent, the front, digest logins, OPTIONS probes and
crash salvage.
"""
