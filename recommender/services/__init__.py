"""Domain logic, written once: views, tags, tasks and admin actions call these modules."""
