"""Database plumbing shared by every package: engine and declarative base, worker heartbeats,
site settings.
"""
