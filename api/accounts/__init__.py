"""People's accounts: the users table, passwords, one-time codes, console sessions and their
administration.
"""
