"""Debtors and their numbers as the agency's collection system sends them: records, sealing,
bulk import.
"""
