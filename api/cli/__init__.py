"""The `dialguard` command: parsing, the subcommands, `dialguard up` and its supervisor, and
the installation doctor.
"""
