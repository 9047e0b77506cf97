"""Optional integrations with other Django packages; each is an app of its own, installed on demand."""
