"""Recordings as supervisors and auditors look for them: the finder, and retrieval requests due
the same working day.
"""
