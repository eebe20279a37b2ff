"""The audit log: every access and change, chained so that an edit or a deletion shows."""
