"""Management commands of the demo news app."""
