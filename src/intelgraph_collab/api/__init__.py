"""The HTTP (REST) transport."""
