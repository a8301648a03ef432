"""certportal-agent: keeps a host's certificates issued and renewed through certportal's API."""

__version__ = "0.1.0"
