"""What readers do and what the site holds: events, content mirrored into Items, interest profiles.

Everything here writes; ``serving`` and ``training`` only read what it wrote.
"""
